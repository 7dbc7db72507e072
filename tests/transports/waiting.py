"""Waiting on other threads in the blocking client's tests: a bounded poll of a condition (the
condition decides; the bound only keeps a broken build from hanging), and a virtual clock that
tells which threads wait on it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ndb_server import VirtualClock


def until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Whether ``predicate`` becomes true within ``timeout`` real seconds (looked at every
    0.01 s)."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        tick.wait(0.01)
    return bool(predicate())


class WatchedClock(VirtualClock):
    """A VirtualClock that tells which threads wait on it, and until when."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, float | None] = {}

    def wait(self, timeout: float | None, *args: Any, **kwargs: Any) -> Any:
        name = threading.current_thread().name
        self.waiting[name] = None if timeout is None else self.current_time() + timeout
        try:
            return super().wait(timeout, *args, **kwargs)
        finally:
            del self.waiting[name]

    def sleeps_until_later(self, names: tuple[str, ...]) -> bool:
        """Whether one of the threads ``names`` waits until a time still ahead."""
        now = self.current_time()
        return any(
            until is not None and until > now
            for name, until in list(self.waiting.items())
            if name in names
        )
