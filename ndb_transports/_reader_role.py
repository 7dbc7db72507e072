"""The blocking client's reader role (leader/follower), in one place.

Threads sharing a blocking client have no I/O thread: one of the threads waiting for a reply
reads the socket for everyone (the *leader*, holding the reader role) and the others sleep (the
*followers*), each on its own wake-up queue, so a reply wakes exactly the thread it belongs to,
which then needs no lock to see its result. When
the leader's own request is answered it lets go of the role and wakes one follower that still
waits, which becomes the next leader. A single thread is always its own leader and never
switches threads per request.

Every method here must be called with the client's lock held (asserted); the role itself is
held across sections where the lock is not: the leader reads without the lock, so other threads
can submit meanwhile.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ndb_transports.clock import VirtualClock


class Waiter:
    """One thread's wait: for the result of a request, or for its turn to hold the role.

    ``tokens`` is the thread's wake-up queue, reused by every wait of that thread: a wake is a
    token put in it (a C-level queue: no lock to re-take on waking, unlike a condition).
    ``handed`` tells a woken thread that the wake was the role handed to it (`pass_on`), not
    its own reply: only then must it pass the role on if it leaves without taking it, and a
    thread woken by its reply leaves without the lock.
    """

    __slots__ = ("done", "error", "handed", "tokens", "value")

    def __init__(self, tokens: queue.SimpleQueue[None]) -> None:
        self.done = False
        self.handed = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.tokens = tokens


class ReaderRole:
    """Who reads the socket (or reconnects) for everyone, and who sleeps until woken."""

    def __init__(self, lock: threading.Lock, clock: VirtualClock | None = None) -> None:
        self._lock = lock
        self._clock = clock  # sleeps end when it passes their deadline
        self._local = threading.local()
        self.held = False
        # Threads asleep (or about to be), in arrival order (a dict: ordered, O(1) removal).
        # A thread is woken at most once per enlisting: waking removes it.
        self._followers: dict[Waiter, None] = {}

    def waiter(self) -> Waiter:
        """A fresh waiter for the calling thread, with that thread's wake-up queue."""
        tokens: queue.SimpleQueue[None] | None = getattr(self._local, "tokens", None)
        if tokens is None:
            tokens = self._local.tokens = queue.SimpleQueue()
        return Waiter(tokens)

    # -- the role ------------------------------------------------------------------------------

    def take(self) -> bool:
        """Under the lock: take the role if nobody holds it. True when taken."""
        assert self._lock.locked()
        if self.held:
            return False
        self.held = True
        return True

    def release(self) -> None:
        """Under the lock: let go of the role and wake the first follower still waiting, which
        takes it over."""
        assert self._lock.locked() and self.held
        self.held = False
        self.pass_on()

    def pass_on(self) -> None:
        """Under the lock, when nobody holds the role: wake the first follower still waiting,
        to take it. Called by a woken thread that leaves without taking the role (its request
        was answered meanwhile, or it was interrupted), so a hand-off is never lost."""
        assert self._lock.locked()
        if self.held:
            return
        for follower in self._followers:
            if not follower.done:
                follower.handed = True
                self._wake(follower)
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

    # -- sleeping and waking -------------------------------------------------------------------

    def enlist(self, waiter: Waiter) -> None:
        """Under the lock, before `sleep`: ``waiter``'s thread is about to sleep."""
        assert self._lock.locked()
        waiter.handed = False
        self._followers[waiter] = None

    @staticmethod
    def sleep(waiter: Waiter, timeout: float | None) -> bool:
        """Without the lock: sleep until woken or ``timeout`` real seconds pass (None: no
        limit); True when woken. A wake may be stale (it arrived after an earlier timeout):
        callers always look again."""
        try:
            waiter.tokens.get(timeout=timeout)
        except queue.Empty:
            return False
        return True

    def doze(self, waiter: Waiter, timeout: float | None) -> None:
        """`sleep` for ``timeout`` seconds of the client's clock: real ones, or a VirtualClock's
        (then a move of the clock wakes the sleeper too)."""
        clock = self._clock
        if clock is None:
            self.sleep(waiter, timeout)
        else:
            tokens = waiter.tokens
            clock.wait(timeout, lambda real: self.sleep(waiter, real), lambda: tokens.put(None))

    def withdraw(self, waiter: Waiter) -> None:
        """Under the lock, after `sleep`: no longer asleep (woken, or its timeout passed)."""
        self._followers.pop(waiter, None)

    def follow(self, waiter: Waiter, timeout: float | None) -> None:
        """Under the lock: `enlist`, `sleep` without the lock, `withdraw` with it again."""
        self.enlist(waiter)
        self._lock.release()
        try:
            self.doze(waiter, timeout)
        except BaseException:
            self._lock.acquire()
            self.withdraw(waiter)
            self.pass_on()
            raise
        self._lock.acquire()
        self.withdraw(waiter)

    def resolve(self, waiter: Waiter, value: Any) -> None:
        """Under the lock: the request succeeded; wake its thread (and only it)."""
        waiter.value = value
        waiter.done = True
        self._wake(waiter)

    def reject(self, waiter: Waiter, error: BaseException) -> None:
        """Under the lock: the request failed; wake its thread (and only it)."""
        waiter.error = error
        waiter.done = True
        self._wake(waiter)

    def _wake(self, waiter: Waiter) -> None:
        followers = self._followers
        if waiter in followers:  # asleep (a leader needs no wake): wake it, once
            del followers[waiter]
            waiter.tokens.put(None)

    def wake_all(self) -> None:
        """Under the lock: wake every follower to look again (the connection changed)."""
        assert self._lock.locked()
        followers, self._followers = self._followers, {}
        for follower in followers:
            follower.tokens.put(None)
