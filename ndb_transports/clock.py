"""Clocks for tests: time that moves when a test says so, shared by the servers and the clients.

A *clock* here is whatever a test already holds to control time:

* trio's ``trio.testing.MockClock``, given to ``trio.run(..., clock=clock)``: the trio client
  reads trio's time anyway, and a memory server given the same clock follows it;
* `VirtualClock`, for everything else: the blocking client (``NdbClient(clock=clock)``), an
  asyncio event loop running on it (``clock.new_event_loop()``: the asyncio client reads the
  loop's time anyway) and any server (``MemoryServer(clock=clock)``,
  ``ServerThread(clock=clock)``). It stands still until `VirtualClock.advance`, or, with
  ``autojump_threshold``, jumps ahead by itself when a blocked client call or an idle event
  loop has nothing left to wait for but time.

`time_source` turns either (or a plain function returning seconds) into the function that reads
it. Nothing here patches the standard library's clocks: other event loops and threads keep real
time.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["ClockFollower", "VirtualClock", "check_clock", "time_source"]

T = TypeVar("T")


class ClockFollower(Protocol):
    """Something with timed work of its own on a `VirtualClock` (a server's sweep and idle
    timers): the clock stops at each `next_due` on its way and calls `catch_up` there."""

    def next_due(self) -> float | None:
        """The clock time of the next timed work (None: nothing planned)."""

    def catch_up(self) -> None:
        """Do every timed work due at the clock's current time, in order."""


class VirtualClock:
    """Time for tests, in seconds from ``start``, that moves only when the test moves it.

    ``advance(seconds)`` moves it; on the way, the servers following it (``clock=`` of
    `ndb_server.MemoryServer` and `ndb_server.ServerThread`) run their sweeps, idle pings and
    drops at their own times, in order; then blocking clients waiting on it
    (``NdbClient(clock=clock)``) and event loops running on it (`new_event_loop`) wake up to
    see whether their deadlines have passed.

    With a finite ``autojump_threshold`` (as trio's ``MockClock``), a blocking client call, or
    an event loop with nothing else to do, that has waited that many real seconds with nothing
    arriving moves the clock itself, to the earliest deadline of any client, loop or server
    waiting on it: a timeout, a backoff, a keepalive ping or a server's idle drop then happens
    at once. Each waiting thread judges that alone: ``0`` suits one thread or task on a memory
    server, whose replies are there when a request's write returns; with several threads, or a
    socket server (whose replies take real time), a jump could overtake another thread's
    request or a reply on its way, so give it a threshold longer than any reply can take on
    the slowest machine the tests run on (a loaded CI machine can take a tenth of a second;
    1.0 is safe). The default,
    ``math.inf``, never jumps.
    """

    def __init__(self, start: float = 0.0, *, autojump_threshold: float = math.inf) -> None:
        if isinstance(start, bool) or not isinstance(start, (int, float)):
            raise TypeError(f"start must be a number, got {start!r}")
        if not autojump_threshold >= 0:
            raise ValueError(f"autojump_threshold must be >= 0, got {autojump_threshold!r}")
        self._now = float(start)
        self.autojump_threshold = autojump_threshold
        self._moving = threading.RLock()  # one move at a time; followers run under it
        self._lock = threading.Lock()  # the sleepers
        self._followers: weakref.WeakSet[ClockFollower] = weakref.WeakSet()
        self._sleepers: dict[object, tuple[float | None, Callable[[], None]]] = {}
        self._seen = threading.local()  # per thread: the time it last read (see `wait`)

    def current_time(self) -> float:
        """The clock's time in seconds (as ``trio.testing.MockClock.current_time``)."""
        now = self._seen.now = self._now
        return now

    def advance(self, seconds: float) -> None:
        """Move ``seconds`` forward. The followers' timed work falling due on the way runs at
        its own time, in order, before this returns; then every waiting client wakes up. Clients
        do not run in between: to let one answer a server's ping before its idle drop, advance
        in two steps."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"seconds must be a number, got {seconds!r}")
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._moving:
            self._move_to(self._now + seconds)

    def follow(self, follower: ClockFollower) -> None:
        """Have ``follower`` run its timed work as the clock moves (held weakly)."""
        with self._moving:
            self._followers.add(follower)

    def unfollow(self, follower: ClockFollower) -> None:
        with self._moving:
            self._followers.discard(follower)

    def _move_to(self, target: float) -> None:
        ran_at = -math.inf
        while True:
            due = self._followers_due()
            if due is None or due > target or due <= ran_at:
                break
            self._now = max(self._now, due)
            ran_at = self._now
            for follower in list(self._followers):
                follower.catch_up()
        self._now = max(self._now, target)
        for follower in list(self._followers):
            follower.catch_up()
        self._wake_sleepers()

    def _followers_due(self) -> float | None:
        dues = [due for f in list(self._followers) if (due := f.next_due()) is not None]
        return min(dues, default=None)

    def _wake_sleepers(self) -> None:
        with self._lock:
            wakes = [wake for _, wake in self._sleepers.values()]
        for wake in wakes:
            wake()

    # -- asyncio ----------------------------------------------------------------------------------

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new asyncio event loop whose time is this clock's: its timers (the asyncio
        client's timeouts, backoff and keepalive, ``asyncio.sleep``) fire when the clock passes
        them, and, with ``autojump_threshold``, a loop with nothing to do but wait moves the
        clock to its next timer (or a server's next deadline) at once. Run a coroutine on it
        with ``loop.run_until_complete(main())`` (or, on Python 3.12+,
        ``asyncio.run(main(), loop_factory=clock.new_event_loop)``), then ``loop.close()``."""
        return _VirtualTimeLoop(self)

    # -- for the blocking client ------------------------------------------------------------------

    def wait(
        self,
        timeout: float | None,
        wait: Callable[[float | None], T],
        wake: Callable[[], None],
        *,
        drive: bool = True,
    ) -> T:
        """One wait of a blocking client, for at most ``timeout`` seconds of this clock (None:
        no limit): calls ``wait(real_seconds)``, which returns early, with a true value, when
        something arrives, and is cut short by ``wake()`` when the clock moves. Callers look
        again afterwards (the clock may have passed their deadline). A ``drive`` wait (a caller
        blocked in a client call) that comes back empty after ``autojump_threshold`` real
        seconds moves the clock to the earliest deadline waiting on it."""
        if timeout is not None and timeout <= 0:
            return wait(0.0)
        token = object()
        # A caller computes a ``timeout`` from the time it last read: a move since then (which
        # woke the sleepers before this one was among them) makes it look again at once.
        before = self._now if timeout is None else getattr(self._seen, "now", self._now)
        deadline = None if timeout is None else before + timeout
        with self._lock:
            self._sleepers[token] = (deadline, wake)
        try:
            if self._now != before:
                # Moved before this wait could be woken by it: look again.
                jumps = False
                result = wait(0.0)
            else:
                jumps = drive and math.isfinite(self.autojump_threshold) and self._has_target()
                result = wait(self.autojump_threshold if jumps else None)
        finally:
            with self._lock:
                del self._sleepers[token]
        if jumps and not result and self._now == before:
            # Nothing came, and nobody moved the clock meanwhile: only time can help.
            self._autojump(deadline)
        return result

    def _next_target(self, own: float | None = None) -> float | None:
        """The earliest deadline still ahead of a sleeper or a follower (and ``own``), if any
        (a sleeper whose deadline has come is being woken: it looks again by itself)."""
        with self._lock:
            deadlines = [d for d, _ in self._sleepers.values() if d is not None]
        now = self._now
        ahead = (d for d in (*deadlines, own, self._followers_due()) if d is not None and d > now)
        return min(ahead, default=None)

    def _has_target(self) -> bool:
        """Whether an autojump would have somewhere to go (otherwise a wait blocks until woken:
        with a threshold of 0 it would spin)."""
        with self._moving:
            return self._next_target() is not None

    def _autojump(self, own: float | None) -> None:
        with self._moving:
            target = self._next_target(own)
            if target is not None:
                self._move_to(target)


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop reading a `VirtualClock`: each wait for I/O is a `VirtualClock.wait`
    until the next timer, woken through the loop's self-pipe when the clock moves."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._virtual_clock = clock
        selector: selectors.BaseSelector = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            if timeout is not None and timeout <= 0:
                return real_select(0)
            return clock.wait(timeout, real_select, self._write_to_self)  # type: ignore[attr-defined]

        selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        return self._virtual_clock.current_time()

    # asyncio runs a timer once ``when < time() + _clock_resolution``; its default (the real
    # clock's resolution, 1e-9) is below one step of a float past about 1e7 seconds, where a
    # clock landing exactly on a timer would never run it. A few steps of the current time are
    # enough at any time.
    @property
    def _clock_resolution(self) -> float:
        return max(self._base_resolution, 4 * math.ulp(self._virtual_clock.current_time()))

    @_clock_resolution.setter
    def _clock_resolution(self, value: float) -> None:
        self._base_resolution = value


def check_clock(name: str, value: object) -> None:
    """The check of a ``clock`` option: None, or something `time_source` can read."""
    if value is not None:
        try:
            time_source(value)
        except TypeError:
            raise TypeError(
                f"{name} must be None, a VirtualClock, trio.testing.MockClock (anything with "
                f"current_time()) or a function returning seconds, got {value!r}"
            ) from None


def time_source(clock: Any) -> Callable[[], float]:
    """The function reading ``clock``: its ``current_time`` (`VirtualClock`, trio's clocks), the
    function itself, or ``time.monotonic`` for None."""
    if clock is None:
        return time.monotonic
    current = getattr(clock, "current_time", None)
    if callable(current):
        return current  # type: ignore[no-any-return]
    if callable(clock) and not isinstance(clock, asyncio.AbstractEventLoop):
        return clock  # type: ignore[no-any-return]
    raise TypeError(f"not a clock: {clock!r}")
