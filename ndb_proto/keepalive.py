"""Keepalive pings on an open connection, and the deadline for their answer.

Optional (``ping_interval=None`` turns it off). A ping goes out every ``ping_interval`` seconds;
if one is still unanswered ``ping_timeout`` seconds after it was sent, the connection counts as
dead. An unanswered ping keeps its deadline when the next one goes out, so a server that stops
answering is found after ``ping_timeout``, not later.
"""

from __future__ import annotations


class Keepalive:
    """When the next ping is due and when the outstanding one must be answered; `deadline` is
    the earlier of the two (None while stopped or turned off)."""

    __slots__ = ("_answer_by", "_ping_at", "_sent", "deadline", "interval", "timeout")

    def __init__(self, interval: float | None, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self._ping_at: float | None = None
        self._answer_by: float | None = None
        self._sent = 0
        self.deadline: float | None = None

    def start(self, now: float) -> None:
        """A connection opened: the first ping is due one interval from ``now``."""
        self._sent = 0
        self._answer_by = None
        self._ping_at = None if self.interval is None else now + self.interval
        self._update()

    def stop(self) -> None:
        """The connection is closing or gone: nothing is due any more."""
        self._ping_at = self._answer_by = self.deadline = None

    def pong_received(self) -> None:
        self._answer_by = None
        self._update()

    def unanswered(self, now: float) -> bool:
        """Whether a ping has gone unanswered past its deadline (the connection is dead)."""
        return self._answer_by is not None and now >= self._answer_by

    def ping_due(self, now: float) -> bytes | None:
        """The payload of the ping to send now, if one is due (and plan the next one)."""
        at = self._ping_at
        if at is None or now < at:
            return None
        assert self.interval is not None  # a ping is only planned with an interval
        self._sent += 1
        if self._answer_by is None:  # an unanswered ping keeps its deadline
            self._answer_by = now + self.timeout
        self._ping_at = now + self.interval
        self._update()
        return self._sent.to_bytes(8, "big")

    def _update(self) -> None:
        ping_at, answer_by = self._ping_at, self._answer_by
        if ping_at is None or (answer_by is not None and answer_by < ping_at):
            self.deadline = answer_by
        else:
            self.deadline = ping_at
