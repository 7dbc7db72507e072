"""When and where to connect next: exponential backoff with jitter over a pool of servers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ndb_proto.uri import Endpoint


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnect attempts: ``initial`` doubling up to ``maximum`` seconds, each
    scaled by a random factor in [1 - ``jitter``, 1] so that many clients do not retry in step."""

    initial: float = 0.1
    maximum: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("Backoff needs 0 < initial <= maximum")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff.jitter must be in [0, 1]")

    def delay(self, failures: int, random: Callable[[], float]) -> float:
        """The wait before the next attempt after ``failures`` consecutive failed attempts."""
        if failures <= 0:
            return 0.0
        base = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 64))
        return float(base * (1 - self.jitter * random()))


@dataclass(frozen=True, slots=True)
class ConnectPlan:
    """Connect to ``endpoint`` no earlier than ``at`` (a time on the transport's clock)."""

    endpoint: Endpoint
    at: float


class Reconnector:
    """Rotates through the endpoints after each failed attempt. A pool of several servers is
    tried in turn without waiting; once every one has failed, the wait grows with each round,
    and it resets when a connection succeeds."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        backoff: Backoff,
        random: Callable[[], float],
        stable_after: float = 5.0,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = tuple(endpoints)
        self.backoff = backoff
        self._random = random
        self._index = 0
        self._failures = 0
        self._not_before: float | None = None
        self._connected_at: float | None = None
        self.stable_after = stable_after

    @property
    def current(self) -> Endpoint:
        return self.endpoints[self._index]

    @property
    def failures(self) -> int:
        """Consecutive failed attempts since the last success."""
        return self._failures

    def plan(self, now: float) -> ConnectPlan:
        """The next attempt: which server, and when."""
        at = now if self._not_before is None else max(now, self._not_before)
        return ConnectPlan(self.current, at)

    def failed(self, now: float) -> None:
        """An attempt failed: move to the next server, waiting if a whole round has failed."""
        self._failures += 1
        self._index = (self._index + 1) % len(self.endpoints)
        rounds, rest = divmod(self._failures, len(self.endpoints))
        delay = 0.0 if rest else self.backoff.delay(rounds, self._random)
        self._not_before = now + delay

    def succeeded(self, now: float) -> None:
        self._connected_at = now

    def lost(self, now: float) -> None:
        """An established connection ended. One that lasted at least ``stable_after`` seconds
        is retried at once, on the same server; one that ended sooner counts as a failed
        attempt, so a server that accepts and drops at once is not hammered."""
        connected_at, self._connected_at = self._connected_at, None
        if connected_at is not None and now - connected_at >= self.stable_after:
            self._failures = 0
            self._not_before = now
        else:
            self.failed(now)
