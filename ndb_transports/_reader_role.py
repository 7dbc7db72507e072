"""The blocking client's reader role (leader/follower), in one place.

Threads sharing a blocking client have no I/O thread: one of the threads waiting for a reply
reads the socket for everyone (the *leader*, holding the reader role) and the others sleep (the
*followers*), each on its own condition, so a reply wakes exactly the thread it belongs to. When
the leader's own request is answered it lets go of the role and wakes one follower that still
waits, which becomes the next leader. A single thread is always its own leader and never
switches threads per request.

Every method here must be called with the client's lock held (asserted); the role itself is
held across sections where the lock is not: the leader reads without the lock, so other threads
can submit meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Waiter:
    """One thread's wait: for the result of a request, or for its turn to hold the role.

    ``wake`` is a condition on the client's lock, reused by every wait of the same thread.
    """

    __slots__ = ("done", "error", "value", "wake")

    def __init__(self, wake: threading.Condition) -> None:
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.wake = wake

    def resolve(self, value: Any) -> None:
        """Under the lock: the request succeeded; wake its thread (and only it)."""
        self.value = value
        self.done = True
        self.wake.notify()

    def reject(self, error: BaseException) -> None:
        """Under the lock: the request failed; wake its thread (and only it)."""
        self.error = error
        self.done = True
        self.wake.notify()


class ReaderRole:
    """Who reads the socket (or reconnects) for everyone, and who sleeps until woken."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._local = threading.local()
        self.held = False
        # Followers in arrival order (a dict: ordered, O(1) removal).
        self._followers: dict[Waiter, None] = {}

    def waiter(self) -> Waiter:
        """A fresh waiter for the calling thread, with that thread's condition."""
        wake: threading.Condition | None = getattr(self._local, "wake", None)
        if wake is None:
            wake = self._local.wake = threading.Condition(self._lock)
        return Waiter(wake)

    def take(self) -> bool:
        """Under the lock: take the role if nobody holds it. True when taken."""
        assert self._lock.locked()
        if self.held:
            return False
        self.held = True
        return True

    def follow(self, waiter: Waiter, timeout: float | None) -> None:
        """Under the lock: sleep until ``waiter`` is resolved, the role is handed to it, or
        ``timeout`` seconds pass (None: no limit). The caller looks again either way."""
        assert self._lock.locked()
        followers = self._followers
        followers[waiter] = None
        try:
            waiter.wake.wait(timeout)
        finally:
            del followers[waiter]

    def release(self) -> None:
        """Under the lock: let go of the role and wake the first follower still waiting, which
        takes it over (a follower whose request is done needs no wake: it was woken for that)."""
        assert self._lock.locked() and self.held
        self.held = False
        for follower in self._followers:
            if not follower.done:
                follower.wake.notify()
                return

    @contextmanager
    def holding(self) -> Iterator[None]:
        """For a role just taken with `take`: the block runs holding it (without the lock),
        and the role is released, under the lock, however the block ends."""
        assert self.held
        try:
            yield
        finally:
            with self._lock:
                self.release()

    def wake_all(self) -> None:
        """Under the lock: wake every follower to look again (the connection changed)."""
        assert self._lock.locked()
        for follower in self._followers:
            follower.wake.notify()
