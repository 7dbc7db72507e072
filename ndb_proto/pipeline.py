"""Request/reply matching for a protocol with no request ids.

NemesisDB answers every request on a connection exactly once, in order, so replies are matched
first-in first-out. The pipeline keeps the requests written and not yet answered (in flight) and
those waiting for room (queued). Room is at most ``max_in_flight`` requests, and exact with
respect to NemesisDB's 128 KiB rule: the server silently drops a reply once 128 KiB of its
output is unread, which would shift every later reply onto the wrong request. So a request is
written only when the size bounds of the replies in flight ahead of it, and its own, fit
``reply_budget`` (below 128 KiB), and nothing is written behind a request whose reply is
unbounded (GET, KEYS, FIND: see `ndb_proto.commands`) until that reply has been read. The
server's unread output can then pass 128 KiB only through one unbounded reply, the last in
flight, so nothing behind it can be dropped. The cost: such requests are not pipelined behind
one another on one connection (parallel reads take a pool of connections), unless the user
declares ``read_reply_limit``: reads are then counted at that size like bounded replies, and a
reply found larger than it is reported by `Pipeline.reply` so the client gives the connection
up before matching anything behind it (whose replies the server may have dropped). The pipeline is
independent of any connection: queued requests survive a reconnect; in-flight ones cannot, and
are failed.

Invariants (tested in ``tests/proto/test_pipeline_model.py``):

* every submitted request gets exactly one `ReplyReceived` or `RequestFailed`, unless its caller
  abandons it first, after which it gets neither;
* a reply is only ever given to the request it answers: an abandoned or timed-out request keeps
  its place in the FIFO, and its reply is read and dropped;
* no more than ``max_in_flight`` requests are written and unanswered at any time; the size
  bounds of their replies add up to no more than ``reply_budget`` (one request always fits),
  and no request is in flight behind one whose reply is unbounded;
* a reply whose contents answer another request (keys not asked for, another token) fails the
  connection rather than reach a caller;
* with ``read_reply_limit``, a read's reply larger than the limit is reported before any reply
  behind it is matched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from itertools import count
from sys import maxsize
from typing import Any

from ndb_proto.commands import FIXED_REPLY_BOUND, Request
from ndb_proto.errors import (
    NdbError,
    NdbTimeoutError,
    RemoteProtocolError,
    ReplyMismatchError,
    ResponseError,
)
from ndb_proto.events import Event, ReplyReceived, RequestFailed
from ndb_proto.options import REPLY_BUDGET as REPLY_BUDGET
from ndb_proto.options import at_least, none_or_at_least


class _Slot:
    __slots__ = ("abandoned", "cost", "deadline", "limit", "request", "request_id", "sent")

    def __init__(self, request_id: int, request: Request[Any], deadline: float | None) -> None:
        self.request_id = request_id
        self.request = request
        self.deadline = deadline
        self.abandoned = False
        self.sent = False
        self.cost = 0  # the bound of its reply in bytes, once written; -1 when unbounded
        self.limit = maxsize  # a reply larger than this breaks the window (a declared limit)


class Pipeline:
    """FIFO matching, a bounded window and per-request deadlines; events go to ``events``."""

    def __init__(
        self,
        max_in_flight: int,
        events: list[Event],
        reply_grace: float,
        reply_budget: int = REPLY_BUDGET,
        read_reply_limit: int | None = None,
    ) -> None:
        at_least(1)("max_in_flight", max_in_flight)  # the options' own checks, for direct use
        at_least(1)("reply_budget", reply_budget)
        none_or_at_least(FIXED_REPLY_BOUND)("read_reply_limit", read_reply_limit)
        self.max_in_flight = max_in_flight
        self.reply_grace = reply_grace
        self.reply_budget = reply_budget
        self.read_reply_limit = read_reply_limit
        self._read_cost = -1 if read_reply_limit is None else read_reply_limit
        self._outstanding = 0  # bytes: the sum of the reply bounds in flight (see take_sendable)
        self._events = events
        self._ids = count(1)
        self._live: dict[int, _Slot] = {}
        self._queue: deque[_Slot] = deque()
        self._in_flight: deque[_Slot] = deque()
        self._deadlines: list[tuple[float, int]] = []

    # -- introspection ---------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests written and not answered, abandoned ones included (they hold a place)."""
        return len(self._in_flight)

    @property
    def waiting(self) -> int:
        """Requests that still expect a result (queued or in flight, not abandoned)."""
        return len(self._live)

    def has_sendable(self) -> bool:
        return bool(self._queue) and len(self._in_flight) < self.max_in_flight

    # -- requests --------------------------------------------------------------------------

    def submit(self, request: Request[Any], deadline: float | None) -> int:
        request_id = next(self._ids)
        slot = _Slot(request_id, request, deadline)
        self._live[request_id] = slot
        self._queue.append(slot)
        if deadline is not None:
            heappush(self._deadlines, (deadline, request_id))
        return request_id

    def take_sendable(self) -> list[Request[Any]]:
        """Move queued requests into the window and return them, in order, for writing.

        The window is ``max_in_flight`` requests, and ``reply_budget`` bytes of reply size
        bounds (one request always fits, whatever its reply size); a request whose reply is
        unbounded closes the window until its reply is read.
        """
        out: list[Request[Any]] = []
        queue, in_flight = self._queue, self._in_flight
        room = self.max_in_flight - len(in_flight)
        if in_flight and in_flight[-1].cost < 0:
            room = 0  # behind an unbounded reply: it could push anything after it past 128 KiB
        while room > 0 and queue:
            slot = queue[0]
            if slot.abandoned:
                queue.popleft()
                continue
            request = slot.request
            command = request.command
            cost = command.reply_bound
            if cost >= 0:
                per_byte = command.reply_per_request_byte
                if per_byte:
                    cost += per_byte * len(request.payload)
                if in_flight and self._outstanding + cost > self.reply_budget:
                    break
            elif self._read_cost < 0:
                # Unbounded: written last, once what is ahead (all bounded) fits the budget.
                if in_flight and self._outstanding > self.reply_budget:
                    break
                room = 1
            else:
                # A read, counted at the size the user declared; its reply is checked against it.
                cost = slot.limit = self._read_cost
                if in_flight and self._outstanding + cost > self.reply_budget:
                    break
            # An unbounded reply's -1 is taken back when it is read; until then nothing is
            # written (the barrier above), so `_outstanding` is not consulted meanwhile.
            self._outstanding += cost
            queue.popleft()
            slot.sent = True
            slot.cost = cost
            in_flight.append(slot)
            out.append(request)
            room -= 1
        return out

    def abandon(self, request_id: int) -> None:
        """The caller no longer wants the result. A written request keeps its FIFO place so its
        reply is recognised and dropped; a queued one will never be written."""
        slot = self._live.pop(request_id, None)
        if slot is not None:
            slot.abandoned = True

    # -- replies ---------------------------------------------------------------------------

    def expected_reply(self) -> str | None:
        """The reply name the oldest request in flight expects (it may also get ``ERR``)."""
        return self._in_flight[0].request.command.rsp if self._in_flight else None

    def head_expects(self, name: str) -> bool:
        """Whether a reply called ``name`` can belong to the oldest request in flight."""
        expected = self.expected_reply()
        return expected is not None and name in (expected, "ERR")

    def reply(self, name: str, body: dict[str, Any], size: int = 0) -> bool:
        """Give a decoded reply (of ``size`` bytes) to the oldest request in flight. Returns True
        when the reply was larger than its declared limit (``read_reply_limit``): the replies
        behind it may have been dropped by the server, so the caller must give the connection
        up before matching another.

        Raises `RemoteProtocolError` when the reply cannot belong to it: nothing in flight, a
        name that is neither its reply name nor ``ERR``, or contents that answer a different
        request (`ReplyMismatchError`, e.g. keys that were not asked for). FIFO matching can no
        longer be trusted then; the request stays in flight, to fail with the connection.
        """
        in_flight = self._in_flight
        if not in_flight:
            raise RemoteProtocolError(f"received {name} with no request in flight")
        slot = in_flight[0]
        request = slot.request
        command = request.command
        if name != command.rsp and name != "ERR":
            raise RemoteProtocolError(
                f"received {name} while the oldest request in flight is {command.name}"
            )
        status = body.get("st")
        error: BaseException | None = None
        value: Any = None
        if type(status) is not int:
            error = RemoteProtocolError(f"{name} reply has no integer 'st' member: {body!r}")
        elif name == "ERR" or status not in command.success:
            error = ResponseError(command.name, status, body)
        else:
            # Read the reply even for an abandoned request: a mismatch reveals a shifted FIFO.
            try:
                value = request.result(body)
            except ReplyMismatchError:
                raise
            except RemoteProtocolError as exc:
                error = exc
        in_flight.popleft()
        self._outstanding -= slot.cost
        if not slot.abandoned:
            del self._live[slot.request_id]
            if error is None:
                self._events.append(ReplyReceived(slot.request_id, value))
            else:
                self._events.append(RequestFailed(slot.request_id, error))
        return size > slot.limit

    def fail_head(self, error: BaseException, size: int = 0) -> bool:
        """The reply for the oldest request in flight arrived whole (``size`` bytes) but cannot
        be read (say, too deeply nested to decode): that request alone fails; the FIFO stays in
        step. Returns True when the reply broke its declared limit, as `reply` does."""
        slot = self._in_flight.popleft()
        self._outstanding -= slot.cost
        if not slot.abandoned:
            del self._live[slot.request_id]
            self._events.append(RequestFailed(slot.request_id, error))
        return size > slot.limit

    # -- time ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        live = self._live
        while heap and heap[0][1] not in live:
            heappop(heap)
        first = heap[0][0] if heap else None
        in_flight = self._in_flight
        if in_flight:  # `stall_deadline`, inline: this runs after every reply
            head = in_flight[0].deadline
            if head is not None and (first is None or head + self.reply_grace < first):
                return head + self.reply_grace
        return first

    def stall_deadline(self) -> float | None:
        """When the oldest request in flight counts as never answered: its deadline plus the
        grace period. A server that drops a reply breaks FIFO matching for every later one."""
        if not self._in_flight:
            return None
        deadline = self._in_flight[0].deadline
        return None if deadline is None else deadline + self.reply_grace

    def expire(self, now: float) -> bool:
        """Fail every request whose deadline has passed. Returns True when the oldest request in
        flight is past its grace period too, so the connection must be given up."""
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, request_id = heappop(heap)
            slot = self._live.pop(request_id, None)
            if slot is None:
                continue
            slot.abandoned = True
            if slot.sent:
                message = f"{slot.request.command.name} got no reply before its deadline"
            else:
                message = f"{slot.request.command.name} was not sent before its deadline"
            self._events.append(
                RequestFailed(request_id, NdbTimeoutError(message, outcome_unknown=slot.sent))
            )
        stall = self.stall_deadline()
        return stall is not None and stall <= now

    # -- the end of a connection -----------------------------------------------------------

    def fail_in_flight(self, error: Callable[[], NdbError]) -> None:
        """The connection is gone: fail every request written on it (outcome unknown)."""
        for slot in self._in_flight:
            if not slot.abandoned:
                del self._live[slot.request_id]
                self._events.append(RequestFailed(slot.request_id, error()))
        self._in_flight.clear()
        self._outstanding = 0

    def fail_queued(self, error: Callable[[], NdbError]) -> None:
        """Fail every request not yet written (their outcome is known: they did not run)."""
        for slot in self._queue:
            if not slot.abandoned:
                del self._live[slot.request_id]
                self._events.append(RequestFailed(slot.request_id, error()))
        self._queue.clear()
