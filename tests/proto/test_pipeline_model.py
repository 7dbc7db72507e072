"""A real `ClientProtocol` and a fake server, driven by random rules, checked against a plain FIFO
model of what must happen to every request.

Each request carries a unique marker (in its key, name or token) and the fake server echoes it
in the reply, so a reply given to the wrong request is seen at once. The model knows, for every
request: submitted / written on the current connection / answered / abandoned / timed out, and
so which single event (if any) each step must produce.

Checked: no reply reaches the wrong request; each request resolves exactly once, or never after
being abandoned; never more than ``max_in_flight`` written and unanswered; no request in flight
behind one whose reply is unbounded (a GET, unless ``read_reply_limit`` declares a size for reads:
then a read's reply over it ends the connection after it is matched), and the size bounds of the
bounded replies in flight within ``reply_budget`` (one request always fits); the window is used as
far as those allow when requests wait; requests not yet written survive a reconnect and go out on
the new connection; written ones fail with ``ConnectionLostError(outcome_unknown=True)`` when the
connection dies; timeouts give ``NdbTimeoutError`` with the right ``outcome_unknown``; the reply of
an abandoned or timed-out request is dropped; a head request overdue past ``reply_grace`` fails the
connection.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ndb_proto import calls
from ndb_proto.client import ClientProtocol, State
from ndb_proto.commands import ECHO_FACTOR, FIXED_REPLY_BOUND, Request
from ndb_proto.errors import (
    ConnectionLostError,
    NdbTimeoutError,
    ReadReplyLimitError,
    RemoteProtocolError,
    ResponseError,
)
from ndb_proto.events import (
    Connected,
    ConnectionLost,
    Event,
    ReplyReceived,
    RequestFailed,
    UndecodableData,
)
from ndb_proto.options import REPLY_BUDGET
from tests.proto.helpers import URI, FakeServer, budget, compact, reconnect

GRACE = 3.0
KINDS = ["kv_get", "kv_contains", "sh_count", "kv_load", "sh_info", "kv_set"]


def build(kind: str, n: int) -> tuple[Request[Any], str, dict[str, Any], Any]:
    """The request for marker ``n``, its reply name, a success body echoing the marker, and the
    value the client must produce from that body."""
    m = f"m{n}"
    if kind == "kv_get":
        return calls.kv_get([m]), "KV_GET_RSP", {"keys": {m: n}, "st": 1}, {m: n}
    if kind == "kv_contains":
        return calls.kv_contains([m]), "KV_CONTAINS_RSP", {"contains": [m], "st": 1}, [m]
    if kind == "sh_count":
        return calls.sh_count(2**63 + n), "SH_COUNT_RSP", {"cnt": n, "st": 1}, n
    if kind == "kv_load":
        body = {"duration": 1, "keys": n, "name": m, "sessions": 0, "st": 141}
        return calls.kv_load(m), "KV_LOAD_RSP", body, n
    if kind == "sh_info":
        body = {"expires": False, "keyCnt": n, "shared": False, "st": 1, "tkn": n}
        return calls.sh_info(n), "SH_INFO_RSP", body, {k: v for k, v in body.items() if k != "st"}
    assert kind == "kv_set"
    return calls.kv_set({m: n}), "KV_SET_RSP", {"st": 1}, None


@dataclass
class Req:
    rid: int
    kind: str
    marker: int
    deadline: float | None
    rsp: str
    body: dict[str, Any]
    value: Any
    payload: bytes
    written: bool = False
    status: str = "live"  # live | abandoned | timed_out | done


class PipelineModel(RuleBasedStateMachine):
    client: ClientProtocol
    server: FakeServer | None

    @initialize(
        auto=st.booleans(),
        window=st.integers(1, 4),
        reply_budget=st.sampled_from([1, 1024, 2048, REPLY_BUDGET]),
        read_limit=st.sampled_from([None, None, FIXED_REPLY_BOUND, 600]),
    )
    def setup(self, auto: bool, window: int, reply_budget: int, read_limit: int | None) -> None:
        self.auto = auto
        self.window = window
        self.reply_budget = reply_budget
        self.read_limit = read_limit
        self.now = 0.0
        self.client = ClientProtocol(
            URI,
            max_in_flight=window,
            auto_reconnect=auto,
            reply_grace=GRACE,
            reply_budget=reply_budget,
            read_reply_limit=read_limit,
        )
        self.reqs: dict[int, Req] = {}
        self.by_text: dict[str, int] = {}
        self.queue: deque[int] = deque()  # submitted, not written yet (any status)
        self.outstanding: deque[int] = deque()  # written on this connection, unanswered
        self.markers = 0
        self.server = None
        # Whether the client has looked at its queue since the last abandon or timeout: those
        # write nothing by themselves (the next submit or reply does; something is in flight
        # whenever a request waits, so nothing waits forever).
        self.settled = True
        self.connect(manual=False)

    # -- helpers ------------------------------------------------------------------------------

    def live(self, rid: int) -> bool:
        return self.reqs[rid].status == "live"

    def connect(self, manual: bool) -> None:
        self.server, events = reconnect(self.client, self.now, manual=manual)
        assert [type(e) for e in events] == [Connected]
        self.pump()

    def pump(self, settled: bool = True) -> None:
        """Deliver what the client wrote; check it is the oldest live queued requests."""
        self.settled = settled
        data = self.client.data_to_send()
        if self.server is None:
            assert data == b""
            return
        texts = self.server.receive(data).texts
        expected = [rid for rid in self.queue if self.live(rid)][: len(texts)]
        written = [self.by_text[text] for text in texts]
        assert written == expected, (written, expected)
        for rid in written:
            self.reqs[rid].written = True
            self.queue.remove(rid)
            self.outstanding.append(rid)
        # Requests that can never be written are forgotten by the client as it goes.
        assert len(self.outstanding) <= self.window

    def lose(self, expected: dict[int, tuple[type[BaseException], bool | None]]) -> None:
        """The connection is gone: written live requests fail (outcome unknown); queued live
        ones too when there is no auto reconnect (outcome known)."""
        for rid in self.outstanding:
            if self.live(rid):
                expected[rid] = (ConnectionLostError, True)
                self.reqs[rid].status = "done"
        self.outstanding.clear()
        if not self.auto:
            for rid in self.queue:
                if self.live(rid):
                    expected[rid] = (ConnectionLostError, False)
                    self.reqs[rid].status = "done"
            self.queue.clear()
        self.server = None

    def check_failures(
        self, events: list[Event], expected: dict[int, tuple[type[BaseException], bool | None]]
    ) -> None:
        got = {e.request_id: e.error for e in events if isinstance(e, RequestFailed)}
        assert set(got) == set(expected), (got, expected)
        assert len(got) == len([e for e in events if isinstance(e, RequestFailed)])
        for rid, (kind, outcome) in expected.items():
            assert type(got[rid]) is kind, got[rid]
            assert got[rid].outcome_unknown is outcome  # type: ignore[attr-defined]

    def expect_loss(
        self, events: list[Event], expected: dict[int, tuple[type[BaseException], bool | None]]
    ) -> None:
        self.lose(expected)
        assert isinstance(events[-1], ConnectionLost)
        assert sum(isinstance(e, ConnectionLost) for e in events) == 1
        self.check_failures(events, expected)
        assert not any(isinstance(e, ReplyReceived) for e in events)
        assert self.client.state is State.IDLE

    # -- rules --------------------------------------------------------------------------------

    @rule(kind=st.sampled_from(KINDS), deadline=st.none() | st.floats(0.5, 20.0))
    def submit(self, kind: str, deadline: float | None) -> None:
        self.markers += 1
        request, rsp, body, value = build(kind, self.markers)
        at = None if deadline is None else self.now + deadline
        if self.client.state is State.IDLE and not self.auto:
            with pytest.raises(ConnectionLostError) as info:
                self.client.submit(request, at)
            assert info.value.outcome_unknown is False
            return
        rid = self.client.submit(request, at)
        assert rid not in self.reqs
        self.reqs[rid] = Req(rid, kind, self.markers, at, rsp, body, value, request.payload)
        self.by_text[request.payload.decode()] = rid
        self.queue.append(rid)
        assert self.client.events() == []
        self.pump()

    @precondition(lambda self: self.server is not None and self.outstanding)
    @rule(mode=st.sampled_from(["ok", "error", "ERR"]), fragmented=st.booleans())
    def reply(self, mode: str, fragmented: bool) -> None:
        assert self.server is not None
        rid = self.outstanding.popleft()
        req = self.reqs[rid]
        if mode == "ok":
            name, body = req.rsp, req.body
        elif mode == "error":
            name, body = req.rsp, {"m": f"m{req.marker}", "st": 41, "tkn": None}
        else:
            name, body = "ERR", {"m": f"m{req.marker}", "st": 3}
        text = compact({name: body})
        self.client.receive_data(self.server.text(text, fragments=[5] if fragmented else []), 0)
        events = self.client.events()
        if req.status != "live":
            assert events == []  # the reply of an abandoned or timed-out request is dropped
        else:
            (event,) = events
            assert event.request_id == rid  # type: ignore[union-attr]
            if mode == "ok":
                assert event == ReplyReceived(rid, req.value)
            else:
                assert isinstance(event, RequestFailed)
                error = event.error
                assert isinstance(error, ResponseError)
                assert error.rsp == body and error.status == body["st"]
                assert error.command == req.rsp[: -len("_RSP")]
            req.status = "done"
        self.pump()

    @precondition(
        lambda self: (
            self.server is not None
            and self.outstanding
            and self.read_limit is not None
            and self.reqs[self.outstanding[0]].kind == "kv_get"
        )
    )
    @rule()
    def reply_over_the_read_limit(self) -> None:
        """The head read's reply is larger than declared: it is matched, and everything else
        written on the connection fails (the server may have dropped their replies)."""
        assert self.server is not None and self.read_limit is not None
        rid = self.outstanding.popleft()
        req = self.reqs[rid]
        keys = {f"m{req.marker}": "x" * self.read_limit}
        text = compact({"KV_GET_RSP": {"keys": keys, "st": 1}})
        self.client.receive_data(self.server.text(text), self.now)
        events = self.client.events()
        if req.status == "live":
            assert events[0] == ReplyReceived(rid, keys)
            req.status = "done"
            events = events[1:]
        self.expect_loss(events, {})
        assert isinstance(events[-1].error, ReadReplyLimitError)  # type: ignore[union-attr]
        self.client.data_to_send()  # the close frame for the connection given up

    @precondition(lambda self: any(r.status == "live" for r in self.reqs.values()))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(r for r in self.reqs if self.live(r))))
        self.client.abandon(rid)
        self.reqs[rid].status = "abandoned"
        assert self.client.events() == []
        self.pump(settled=False)

    @rule(dt=st.floats(0.0, 8.0))
    def advance_time(self, dt: float) -> None:
        self.now += dt
        self.client.handle_timeout(self.now)
        events = self.client.events()
        expected: dict[int, tuple[type[BaseException], bool | None]] = {}
        for req in self.reqs.values():
            if req.status == "live" and req.deadline is not None and req.deadline <= self.now:
                expected[req.rid] = (NdbTimeoutError, req.written)
                req.status = "timed_out"
        head = self.reqs[self.outstanding[0]] if self.outstanding else None
        stalled = (
            self.server is not None
            and head is not None
            and head.deadline is not None
            and head.deadline + GRACE <= self.now
        )
        if stalled:
            self.expect_loss(events, expected)
            assert "grace period" in str(events[-1].error)  # type: ignore[union-attr]
        else:
            assert all(isinstance(e, RequestFailed) for e in events)
            self.check_failures(events, expected)
        self.pump(settled=self.settled and not expected)

    @precondition(lambda self: self.server is not None)
    @rule()
    def eof(self) -> None:
        self.client.receive_data(b"", self.now)
        events = self.client.events()
        self.expect_loss(events, {})
        assert self.client.data_to_send() == b""

    @precondition(lambda self: self.server is not None)
    @rule(kind=st.sampled_from(["wrong-name", "garbage", "binary", "close"]))
    def violation(self, kind: str) -> None:
        assert self.server is not None
        if kind == "wrong-name":
            data = self.server.reply("ZZ_RSP", {"st": 1})
        elif kind == "garbage":
            data = self.server.text('{"KV_GET_RSP":')
        elif kind == "binary":
            data = self.server.binary(b"\x01")
        else:
            data = self.server.close(1001, "restart")
        self.client.receive_data(data, self.now)
        events = self.client.events()
        if kind == "close":
            self.expect_loss(events, {})
        else:
            assert isinstance(events[0], UndecodableData)
            self.expect_loss(events[1:], {})
            assert isinstance(events[-1].error, RemoteProtocolError)  # type: ignore[union-attr]
        self.client.data_to_send()  # the close frame for a connection given up

    @precondition(lambda self: self.server is None)
    @rule(refused=st.booleans())
    def reconnect(self, refused: bool) -> None:
        plan = self.client.next_connect(self.now)
        assert (plan is not None) == self.auto
        if refused:
            plan = self.client.next_connect(self.now, manual=True)
            assert plan is not None
            self.client.connection_made(plan.endpoint, self.now)
            server = FakeServer(reject=503)
            server.receive(self.client.data_to_send())
            self.client.receive_data(server.data_to_send(), self.now)
            events = self.client.events()
            expected: dict[int, tuple[type[BaseException], bool | None]] = {}
            self.lose(expected)
            self.check_failures(events, expected)
            assert isinstance(events[-1], ConnectionLost)
        else:
            self.connect(manual=not self.auto)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def pending_matches_the_model(self) -> None:
        live = [r for r in self.reqs.values() if r.status == "live"]
        assert self.client.pending == len(live)
        assert self.client.events() == []

    def bound(self, rid: int) -> int | None:
        """The most bytes the reply of ``rid`` can take, None when unbounded: from the
        protocol reference, independently of the client's own table."""
        kind = self.reqs[rid].kind
        if kind == "kv_get":
            return self.read_limit  # None (unbounded) unless the user declared a limit
        if kind in ("kv_contains", "kv_load"):  # they repeat what the request sent
            return FIXED_REPLY_BOUND + ECHO_FACTOR * len(self.reqs[rid].payload)
        return FIXED_REPLY_BOUND

    def fits(self, outstanding: list[int], rid: int) -> bool:
        """Whether ``rid`` may be written behind ``outstanding``."""
        if not outstanding:
            return True  # one request always fits
        bounds = [self.bound(r) for r in outstanding]
        if bounds[-1] is None:
            return False  # behind an unanswered unbounded reply
        return sum(b or 0 for b in bounds) + (self.bound(rid) or 0) <= self.reply_budget

    @invariant()
    def window_is_used_and_never_exceeded(self) -> None:
        """No reply the server writes can find 128 KiB of its output unread ahead of it: the
        replies ahead of each are bounded and fit the budget, with its own when bounded."""
        assert len(self.outstanding) <= self.window
        outstanding = list(self.outstanding)
        bounds = [self.bound(rid) for rid in outstanding]
        assert None not in bounds[:-1]
        for index in range(1, len(bounds)):
            assert sum(b or 0 for b in bounds[: index + 1]) <= self.reply_budget
        if self.server is not None:
            assert self.client.state is State.OPEN
            waiting = [rid for rid in self.queue if self.live(rid)]
            if waiting and self.settled:
                assert len(self.outstanding) == self.window or not self.fits(
                    outstanding, waiting[0]
                )
        else:
            assert self.client.state is State.IDLE

    @invariant()
    def nothing_resolved_twice_or_lost(self) -> None:
        for req in self.reqs.values():
            if req.status == "live":
                assert (req.rid in self.queue) != (req.rid in self.outstanding)


PipelineModel.TestCase.settings = budget(200, stateful_step_count=50)
TestPipelineModel = PipelineModel.TestCase
