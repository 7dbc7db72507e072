"""A server's timed work on a clock it follows instead of a timer per event: the expiry sweep
and each connection's idle ping and drop, run in the order they fall due, up to a given time.

`MemoryServer` uses it for its own clock (`advance`) and for a clock it follows; `NdbServer`
uses it when it follows a test's clock rather than its event loop's timers. The stepping lives
here once, so both servers run the same work in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ndb_server.connection import Outcome, ServerConnection


class Timed(Protocol):
    """A server's wrapper of one connection."""

    @property
    def conn(self) -> ServerConnection | None:
        """The connection's sans-IO state (None before it is made)."""

    def time_passed(self, now: float) -> None:
        """Its deadline has come: let the connection ping or drop, and act on the outcome."""


def _live(connections: Iterable[Timed]) -> list[tuple[Timed, ServerConnection]]:
    return [
        (c, c.conn) for c in connections if c.conn is not None and c.conn.outcome is Outcome.KEEP
    ]


class Timeline:
    """Where a server's time stands (``now``) and when it sweeps next."""

    def __init__(self, now: float, sweep_interval: float) -> None:
        self.now = now
        self.sweep_interval = sweep_interval
        self.next_sweep = now + sweep_interval

    @staticmethod
    def next_deadline(connections: Iterable[Timed]) -> float | None:
        """The earliest idle ping or drop among ``connections`` (sweeps are not counted: they
        are only seen through commands, which catch up first)."""
        return min((conn.next_deadline() for _, conn in _live(connections)), default=None)

    def run_until(
        self,
        target: float,
        sweep: Callable[[], None],
        connections: Callable[[], Iterable[Timed]],
    ) -> None:
        """Move to ``target`` (never back): every sweep and connection deadline on the way runs
        at its own time, in order; ``connections()`` tells which connections have timers now."""
        while True:
            live = _live(connections())
            due = min([self.next_sweep] + [conn.next_deadline() for _, conn in live])
            if due > target:
                break
            self.now = max(self.now, due)
            if self.next_sweep <= self.now:
                sweep()
                self.next_sweep += self.sweep_interval
            for connection, conn in live:
                if conn.outcome is Outcome.KEEP and conn.next_deadline() <= self.now:
                    connection.time_passed(self.now)
        self.now = max(self.now, target)
