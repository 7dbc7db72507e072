"""Faults on cue, the same on the in-memory and the socket server.

A test arms a fault and the next replies obey it: `FaultPlan` decides, reply by reply, whether a
reply goes out as the engine wrote it, is silently dropped (what NemesisDB does past 128 KiB of
unread output), is replaced by a raw text, or is the last one before every connection drops.
Random faults are drawn per command from the seed, the command's text and how many times that
text came before: the same seed and the same requests give the same faults, and a request that
never reaches the server (written to a connection that had just dropped) changes no other
request's fault, so replay is exact with dropped connections too. `FaultPlan.log` records what
was done.

`FaultControls` is the public API both servers share (`ndb_server.MemoryServer` and
`ndb_server.thread.ServerThread`); each server supplies the three actions that touch its
connections: drop them all, stall or resume them, restart.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Final, TypeVar

BROKEN_REPLIES: Final = (
    '{"KV_GET_RSP":',
    "not json at all",
    '{"NO_SUCH_RSP":{"st":1}}',
    "[]",
    '{"KV_SET_RSP":{"st":1},"KV_GET_RSP":{"st":1}}',
)
"""What a random "garbage" fault answers with: texts no NemesisDB reply could be."""

RANDOM_FAULTS: Final = ("drop reply", "answer", "drop connections")
"""The kinds of random fault: a reply dropped, replaced by one of BROKEN_REPLIES, or the last
one before every connection drops."""

_Message = TypeVar("_Message", str, bytes)


class FaultPlan:
    """The armed faults; thread-safe, as tests arm them from their own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: deque[str | None] = deque()  # per reply: a raw answer, or None to drop it
        self._drop_after: int | None = None
        self._dropping = False
        self._seed: int | None = None
        self._seen: dict[str | bytes, int] = {}  # per message text: how many came so far
        self._rate = 0.0
        self._kinds: tuple[str, ...] = RANDOM_FAULTS
        self.log: list[str] = []
        """What each fault did, in order: ``"dropped reply"``, ``"answered <text>"``,
        ``"dropped connections"``."""
        self._armed = False  # anything above to do: False lets replies skip the lock

    def _rearm(self) -> None:
        """Under the lock, after any change: whether `reply` has anything to check."""
        self._armed = bool(
            self._next or self._dropping or self._seed is not None or self._drop_after is not None
        )

    def drop_after(self, replies: int) -> None:
        with self._lock:
            self._drop_after = replies
            self._rearm()

    def drop_next_reply(self) -> None:
        with self._lock:
            self._next.append(None)
            self._rearm()

    def answer_next(self, text: str) -> None:
        with self._lock:
            self._next.append(text)
            self._rearm()

    def randomly(self, seed: int, rate: float, kinds: tuple[str, ...]) -> None:
        with self._lock:
            self._seed = seed
            self._seen = {}
            self._rate = rate
            self._kinds = kinds
            self._rearm()

    def _draw(self, message: str | bytes) -> random.Random:
        """Under the lock: the generator of this command's random fault, seeded with the seed,
        the message and its occurrence, so it does not depend on which other commands came."""
        seen = self._seen[message] = self._seen.get(message, 0) + 1
        text = message.encode() if isinstance(message, str) else message
        return random.Random(f"{self._seed}:{seen}:".encode() + text)

    def take_drop(self) -> bool:
        """True once when every connection must drop now (the server then drops them)."""
        if not self._dropping:  # checked after every read: no lock unless a drop is due
            return False
        with self._lock:
            dropping, self._dropping = self._dropping, False
            self._rearm()
            return dropping

    def reply(self, handle: Callable[[_Message], str], message: _Message) -> str | None:
        """Run ``handle(message)`` (the engine) and return what to send (None: nothing).
        While connections are about to drop, later commands are not run at all."""
        if not self._armed:  # nothing planned (the common case): no lock, no bookkeeping
            return handle(message)
        with self._lock:
            if self._dropping:
                return None
        answer = handle(message)
        with self._lock:
            if self._next:
                planned = self._next.popleft()
                if planned is None:
                    self.log.append("dropped reply")
                    return None
                self.log.append(f"answered {planned}")
                answer = planned
            elif self._seed is not None and (draw := self._draw(message)).random() < self._rate:
                kind = draw.choice(self._kinds)
                if kind == "drop reply":
                    self.log.append("dropped reply")
                    return None
                if kind == "answer":
                    answer = draw.choice(BROKEN_REPLIES)
                    self.log.append(f"answered {answer}")
                else:
                    self._dropping = True
            if self._drop_after is not None:
                self._drop_after -= 1
                if self._drop_after <= 0:
                    self._drop_after = None
                    self._dropping = True
            if self._dropping:
                self.log.append("dropped connections")
            self._rearm()
            return answer


class FaultControls:
    """The fault API of a test server; subclasses provide `_drop_all`, `_stall` and
    `_restart`, which act on the server's connections in the server's own thread."""

    faults: FaultPlan

    def drop_connections(self, after_replies: int = 0) -> None:
        """Drop every connection (no close frame, as a crashed server) now, or right after
        ``after_replies`` more replies have been sent; later requests on them are not run."""
        if (
            isinstance(after_replies, bool)
            or not isinstance(after_replies, int)
            or after_replies < 0
        ):
            raise ValueError(f"after_replies must be an int >= 0, got {after_replies!r}")
        if after_replies == 0:
            self._drop_all()
        else:
            self.faults.drop_after(after_replies)

    def stall(self) -> None:
        """Stop reading and answering (connections stay open) until `resume`."""
        self._stall(True)

    def resume(self) -> None:
        """Read and answer again, starting with everything sent meanwhile."""
        self._stall(False)

    def drop_next_reply(self) -> None:
        """Run the next command but send no reply to it (each call drops one more)."""
        self.faults.drop_next_reply()

    def answer_next(self, text: str) -> None:
        """Run the next command but answer it with ``text``, sent as is (one per call)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        self.faults.answer_next(text)

    def random_faults(
        self, seed: int, rate: float = 0.05, kinds: tuple[str, ...] = RANDOM_FAULTS
    ) -> None:
        """From now on, each reply has probability ``rate`` of a random fault of one of
        ``kinds`` (see RANDOM_FAULTS), drawn from ``seed``, the command's text and how many
        times that text came before: the same seed and the same commands give the same faults,
        whatever the order of connections and whether a command written to a connection that
        had just dropped (it never reaches the server) is sent again or not."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
        if not kinds or not set(kinds) <= set(RANDOM_FAULTS):
            raise ValueError(f"kinds must be some of {RANDOM_FAULTS}, got {kinds!r}")
        self.faults.randomly(seed, rate, tuple(kinds))

    def restart(self, *, keep_data: bool = True) -> None:
        """Drop every connection and come back at once, with the store and sessions as they
        were (``keep_data``) or empty."""
        self._restart(keep_data)

    def _drop_all(self) -> None:
        raise NotImplementedError

    def _stall(self, stalled: bool) -> None:
        raise NotImplementedError

    def _restart(self, keep_data: bool) -> None:
        raise NotImplementedError
