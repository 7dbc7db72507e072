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

A thread may be interrupted (KeyboardInterrupt, or any exception raised in it asynchronously)
at any step, including the one just after the role was handed to it or taken by it, or as it
takes the lock to let go. So the role remembers who holds it, and every thread that takes part
ends with `leave`, however it ends: it then gives up whatever part it had (asleep, handed the
role, or holding it), and the role goes on to the next follower. Nothing here releases and takes
back the lock inside a caller's ``with lock:`` block: an interrupt while taking it back would
leave that block to release a lock this thread does not hold.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
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
        self.holder: Waiter | None = None  # the waiter whose thread holds the role
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

    @property
    def held(self) -> bool:
        """Whether a thread holds the role."""
        return self.holder is not None

    def take(self, waiter: Waiter) -> bool:
        """Under the lock: take the role for ``waiter``'s thread if nobody holds it. True when
        taken."""
        assert self._lock.locked()
        if self.holder is not None:
            return False
        self.holder = waiter
        return True

    def release(self) -> None:
        """Under the lock: let go of the role and wake the first follower still waiting, which
        takes it over."""
        assert self._lock.locked() and self.holder is not None
        self.holder = None
        self.pass_on()

    def pass_on(self) -> None:
        """Under the lock, when nobody holds the role: wake the first follower still waiting,
        to take it. Called by a woken thread that leaves without taking the role (its request
        was answered meanwhile, or it was interrupted), so a hand-off is never lost."""
        assert self._lock.locked()
        if self.holder is not None:
            return
        for follower in self._followers:
            if not follower.done:
                follower.handed = True
                self._wake(follower)
                return

    def leave(self, waiters: Iterable[Waiter]) -> None:
        """Under the lock, as the thread of ``waiters`` stops taking part (by an exception,
        possibly at any step): whatever part it had is given up. It no longer sleeps as a
        follower, the role is released if one of ``waiters`` holds it, and a hand-off it may
        have been given goes on to the next follower (a wake it did not need is harmless: a
        woken thread always looks again)."""
        assert self._lock.locked()
        followers = self._followers
        for waiter in waiters:
            followers.pop(waiter, None)
            if self.holder is waiter:
                self.holder = None
        self.pass_on()

    @contextmanager
    def taking_part(self, waiter: Waiter) -> Iterator[None]:
        """The block may take the role for ``waiter`` (and follow until it can): however the
        block ends, the thread then leaves (see `leave`), under the lock."""
        try:
            yield
        finally:
            with self._lock:
                self.leave((waiter,))

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
