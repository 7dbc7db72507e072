"""Sessions: token -> own key map, with the expiry model of docs/protocol.md §9.2.

Time comes only from the injected monotonic clock (seconds, float). A session with
``duration > 0`` expires at ``start + duration``; ``sweep`` (the server's 5-second monitor body)
deletes every session whose expire time is earlier than now, or, with ``deleteSession:false``,
clears its keys and starts a new period from the sweep time. ``extendOnSetAdd``/``extendOnGet``
restart the period from now.

Deliberate deviation: the server turns the duration into signed 64-bit nanoseconds, so values
above about 9.2e9 s overflow and expire at the next sweep. Here the period used for the expire
time is clamped to ``MAX_PERIOD_S`` (about 292 years), so such a session simply never expires in
practice, while ``SH_INFO`` keeps reporting the duration as given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

__all__ = ["MAX_PERIOD_S", "Expiry", "StoredSession", "Sessions"]

MAX_PERIOD_S: Final = 9_223_372_036
"""Largest whole number of seconds whose nanosecond count fits a signed 64-bit integer."""


@dataclass(frozen=True, slots=True)
class Expiry:
    """``SH_NEW``'s ``expiry`` settings; ``duration`` 0 means the session never expires."""

    duration: int = 0
    delete_session: bool = False
    extend_on_get: bool = False
    extend_on_set_add: bool = False

    @property
    def expires(self) -> bool:
        return self.duration > 0

    @property
    def period(self) -> int:
        """The duration used to compute expire times (clamped, see the module docstring)."""
        return min(self.duration, MAX_PERIOD_S)


@dataclass(slots=True)
class StoredSession:
    """One session: its token, its keys and when it next expires (None: never)."""

    token: int
    expiry: Expiry
    expires_at: float | None
    shared: bool = False
    data: dict[str, object] = field(default_factory=dict)


class Sessions:
    """Every session of the server, keyed by token."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_token: dict[int, StoredSession] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def __iter__(self) -> Iterator[StoredSession]:
        return iter(list(self._by_token.values()))

    def __contains__(self, token: int) -> bool:
        return token in self._by_token

    def get(self, token: int) -> StoredSession | None:
        return self._by_token.get(token)

    def create(
        self,
        token: int,
        expiry: Expiry,
        *,
        shared: bool = False,
        data: dict[str, object] | None = None,
    ) -> StoredSession:
        """Add a session whose first period starts now; the token must be unused."""
        expires_at = self._clock() + expiry.period if expiry.expires else None
        session = StoredSession(token, expiry, expires_at, shared, data if data is not None else {})
        self._by_token[token] = session
        return session

    def end(self, token: int) -> bool:
        return self._by_token.pop(token, None) is not None

    def end_all(self) -> int:
        count = len(self._by_token)
        self._by_token.clear()
        return count

    def total_keys(self) -> int:
        return sum(len(session.data) for session in self._by_token.values())

    def extend_on_set_add(self, session: StoredSession) -> None:
        if session.expiry.extend_on_set_add:
            self._restart(session, self._clock())

    def extend_on_get(self, session: StoredSession) -> None:
        if session.expiry.extend_on_get:
            self._restart(session, self._clock())

    def remaining(self, session: StoredSession) -> int:
        """Whole seconds to the expire time, truncated towards zero (negative when overdue)."""
        if session.expires_at is None:
            return 0
        return int(session.expires_at - self._clock())

    def sweep(self) -> None:
        """The expiry monitor: handle every session whose expire time is before now."""
        now = self._clock()
        for token, session in list(self._by_token.items()):
            if session.expires_at is None or not session.expires_at < now:
                continue
            if session.expiry.delete_session:
                del self._by_token[token]
            else:
                session.data.clear()
                self._restart(session, now)

    @staticmethod
    def _restart(session: StoredSession, now: float) -> None:
        if session.expiry.expires:
            session.expires_at = now + session.expiry.period
