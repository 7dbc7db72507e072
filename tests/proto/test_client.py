"""The ClientProtocol state machine, step by step, against a scripted fake server."""

# ``client.state`` changes under calls; mypy would narrow it as if it could not.
# mypy: disable-error-code="comparison-overlap"

from __future__ import annotations

from typing import Any

import pytest
from wsproto.handshake import H11Handshake

from ndb_proto import calls
from ndb_proto.client import ClientProtocol, State
from ndb_proto.commands import ReplyShapeError
from ndb_proto.errors import (
    ClientClosedError,
    ConnectionLostError,
    LocalProtocolError,
    NdbTimeoutError,
    RemoteProtocolError,
    RequestTooLargeError,
    ResponseError,
)
from ndb_proto.events import (
    Closed,
    Connected,
    ConnectionLost,
    Event,
    ReplyReceived,
    RequestFailed,
    UndecodableData,
)
from ndb_proto.status import Status
from ndb_proto.uri import parse_uri
from tests.proto.helpers import (
    OP_BINARY,
    OP_PING,
    OP_TEXT,
    URI,
    FakeServer,
    accept_response,
    answer_in_turn,
    close_frame,
    frame,
    handshake,
    open_client,
    pump,
    reconnect,
    start,
    text_frame,
)

COUNT = '{"KV_COUNT_RSP":{"cnt":3,"st":1}}'


def lost(events: list[Event]) -> ConnectionLost:
    (event,) = [e for e in events if isinstance(e, ConnectionLost)]
    assert events[-1] is event  # the loss is reported after the requests it failed
    return event


def failures(events: list[Any]) -> dict[int, BaseException]:
    return {e.request_id: e.error for e in events if isinstance(e, RequestFailed)}


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_message_size": 63}, "max_message_size must be in 64..8192"),
        ({"max_message_size": 8193}, "max_message_size must be in 64..8192"),
        ({"max_incoming_message_size": 1023}, "max_incoming_message_size"),
        ({"connect_timeout": 0}, "connect_timeout must be > 0"),
        ({"reply_grace": -1}, "reply_grace must be > 0"),
        ({"ping_timeout": 0.0}, "ping_timeout must be > 0"),
        ({"close_timeout": 0}, "close_timeout must be > 0"),
        ({"ping_interval": 0}, "ping_interval must be None, or > 0"),
        ({"max_in_flight": 0}, "max_in_flight must be >= 1"),
    ],
)
def test_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientProtocol(URI, **options)


def test_uris_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one server"):
        ClientProtocol([])
    with pytest.raises(ValueError, match="ws://, wss:// or memory://"):
        ClientProtocol(["ws://a", "http://b"])


def test_option_edges_are_accepted() -> None:
    for size in (64, 8192):
        assert ClientProtocol(URI, max_message_size=size).max_message_size == size
    client = ClientProtocol(["ws://a", "wss://b"], max_incoming_message_size=None, max_in_flight=3)
    assert client.max_incoming_message_size is None
    assert client.endpoints == (parse_uri("ws://a"), parse_uri("wss://b"))
    assert client.max_in_flight == 3
    assert client.state is State.NEW and client.endpoint is None and client.pending == 0
    assert client.events() == [] and client.data_to_send() == b""
    assert client.next_deadline() is None


# --- the handshake -----------------------------------------------------------------------------


def test_handshake_sends_host_target_subprotocols_and_headers() -> None:
    client = ClientProtocol(
        "ws://[::1]:1987/db?x=1",
        subprotocols=["ndb", "other"],
        extra_headers=[("X-Trace", "abc")],
    )
    server = FakeServer(subprotocol="ndb")
    assert client.next_deadline() is None
    server.receive(start(client, 1.0))
    assert client.state is State.CONNECTING
    assert client.next_deadline() == 6.0  # connect_timeout
    assert server.upgrade is not None
    assert server.upgrade.host == "[::1]:1987"
    assert server.upgrade.target == "/db?x=1"
    assert server.upgrade.subprotocols == ["ndb", "other"]
    assert (b"x-trace", b"abc") in server.upgrade.extra_headers
    client.receive_data(server.data_to_send(), 1.5)
    (event,) = client.events()
    assert event == Connected(parse_uri("ws://[::1]:1987/db?x=1"), "ndb")
    assert client.state is State.OPEN and client.endpoint == event.endpoint
    assert client.next_deadline() is None


def test_handshake_response_split_anywhere_and_frames_in_the_same_chunk() -> None:
    client = ClientProtocol(URI)
    server = FakeServer()
    server.receive(start(client))
    response = server.data_to_send()
    request_id = client.submit(calls.kv_count())  # queued while connecting
    assert client.data_to_send() == b"" and client.in_flight == 0
    client.receive_data(response[:10], 0.0)
    assert client.events() == [] and client.state is State.CONNECTING
    client.receive_data(response[10:], 0.0)
    assert [type(e) for e in client.events()] == [Connected]
    assert pump(client, server).texts == ['{"KV_COUNT":{}}']  # written once open
    assert client.in_flight == 1 and client.pending == 1
    client.receive_data(server.text(COUNT), 0.0)
    assert client.events() == [ReplyReceived(request_id, 3)]

    # A response followed at once by frames: they are read from the handshake's buffer.
    client2 = ClientProtocol(URI)
    server2 = FakeServer()
    server2.receive(start(client2))
    request_id = client2.submit(calls.kv_count())
    response = server2.data_to_send()
    # Replies coalesced with the upgrade response (the request went out with the upgrade).
    client2.receive_data(response + server2.text(COUNT), 0.0)
    events = client2.events()
    assert [type(e) for e in events] == [Connected, ReplyReceived]
    assert events[1] == ReplyReceived(request_id, 3)


@pytest.mark.parametrize("status", [404, 200, 500])
def test_handshake_refused(status: int) -> None:
    client = ClientProtocol(URI, auto_reconnect=True)
    server = FakeServer(reject=status)
    server.receive(start(client, 2.0))
    queued = client.submit(calls.kv_keys())
    client.receive_data(server.data_to_send(), 2.0)
    event = lost(client.events())
    assert isinstance(event.error, ConnectionLostError)
    assert str(event.error) == f"the server refused the WebSocket upgrade with HTTP {status}"
    assert event.error.outcome_unknown is None  # about the connection, not a request
    assert client.state is State.IDLE and client.pending == 1  # the queued request survives
    # The refusal counts as a failed attempt: same single server, after a backoff.
    plan = client.next_connect(2.0)
    assert plan is not None and plan.at > 2.0
    server, events = reconnect(client, plan.at)
    assert [type(e) for e in events] == [Connected]
    assert pump(client, server).texts == ['{"KV_KEYS":{}}']
    client.receive_data(server.text('{"KV_KEYS_RSP":{"keys":[],"st":1}}'), 3.0)
    assert client.events() == [ReplyReceived(queued, [])]


def test_informational_response_is_a_refusal() -> None:
    client = ClientProtocol(URI)
    start(client)
    client.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n", 0.0)
    assert "HTTP 100" in str(lost(client.events()).error)


def test_refusal_without_auto_reconnect_fails_queued_requests() -> None:
    client = ClientProtocol(URI, auto_reconnect=False)
    server = FakeServer(reject=404)
    server.receive(start(client))
    request_id = client.submit(calls.kv_count())
    client.receive_data(server.data_to_send(), 0.0)
    events = client.events()
    error = failures(events)[request_id]
    assert type(error) is ConnectionLostError and error.outcome_unknown is False
    assert str(error) == (
        f"connection to {URI} lost: the server refused the WebSocket upgrade with HTTP 404; "
        "the request was not sent"
    )
    assert isinstance(error.__cause__, ConnectionLostError)
    lost(events)
    assert client.next_connect(1.0) is None
    assert client.next_connect(1.0, manual=True) is not None
    with pytest.raises(ConnectionLostError, match="not connected") as info:
        client.submit(calls.kv_count())
    assert info.value.outcome_unknown is False
    assert not isinstance(info.value, ClientClosedError)


@pytest.mark.parametrize(
    "response",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: \xff\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Protocol: \xe9\r\n\r\n",
    ],
    ids=["not-http", "no-connection-header", "bad-accept", "non-ascii", "non-ascii-protocol"],
)
def test_garbage_handshake_response(response: bytes) -> None:
    client = ClientProtocol(URI)
    start(client)
    client.receive_data(response, 0.0)
    events = client.events()
    assert events[0] == UndecodableData(response, str(lost(events).error))
    error = lost(events).error
    assert isinstance(error, ConnectionLostError) and error.outcome_unknown is None
    assert str(error).startswith("WebSocket handshake failed: ")
    assert client.state is State.IDLE


@pytest.mark.parametrize(
    "header",
    [b"Sec-WebSocket-Protocol: b", b"Sec-WebSocket-Extensions: permessage-deflate"],
)
def test_server_accepting_what_was_not_offered_fails_the_handshake(header: bytes) -> None:
    client = ClientProtocol(URI, subprotocols=["a"])
    client.receive_data(accept_response(start(client), header), 0.0)
    events = client.events()
    error = lost(events).error
    # Our type and our prefix; the detail after it is wsproto's wording, not asserted.
    assert type(error) is ConnectionLostError and error.outcome_unknown is None
    assert str(error).startswith("WebSocket handshake failed: ")
    assert client.state is State.IDLE


def test_hand_made_accept_response_is_accepted() -> None:
    client = ClientProtocol(URI, subprotocols=["a"])
    response = accept_response(start(client), b"Sec-WebSocket-Protocol: a", b"X-Other: 1")
    client.receive_data(response + text_frame("{}"), 0.0)
    events = client.events()
    assert events[0] == Connected(parse_uri(URI), "a")
    assert "received {} reply" not in str(events)  # the frame after it was read: a violation
    assert "not an object with one member" in events[1].reason  # type: ignore[union-attr]


@pytest.mark.parametrize("partial", [b"", b"HTTP/1.1 101 Swi", b"HTTP/1.1 404 Not Fo"])
def test_eof_during_handshake(partial: bytes) -> None:
    client = ClientProtocol(URI)
    start(client)
    if partial:
        client.receive_data(partial, 0.0)
    assert client.events() == [] and client.state is State.CONNECTING
    client.receive_data(b"", 0.0)
    # h11 reports an EOF before a complete response as a broken message.
    assert str(lost(client.events()).error) == "WebSocket handshake failed: Bad HTTP message"
    assert client.state is State.IDLE


def test_eof_during_handshake_reported_as_no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the HTTP layer ever reported an EOF as nothing at all (h11 0.16 raises instead),
    the client still gives the connection up rather than waiting for the connect timeout."""
    client = ClientProtocol(URI)
    start(client)
    monkeypatch.setattr(H11Handshake, "receive_data", lambda self, data: None)
    client.receive_data(b"", 0.0)
    error = lost(client.events()).error
    assert str(error) == "the server closed the connection during the handshake"


def test_handshake_timeout() -> None:
    client = ClientProtocol(URI, connect_timeout=3.0)
    assert not client.has_data_to_send
    plan = client.next_connect(10.0)
    assert plan is not None
    client.connection_made(plan.endpoint, 10.0)
    assert client.has_data_to_send  # the upgrade request
    client.data_to_send()
    assert not client.has_data_to_send
    client.handle_timeout(12.9)
    assert client.events() == [] and client.state is State.CONNECTING
    client.handle_timeout(13.0)
    error = lost(client.events()).error
    assert isinstance(error, NdbTimeoutError) and error.outcome_unknown is None
    assert "handshake took longer than 3.0 s" in str(error)
    assert client.state is State.IDLE and client.next_deadline() is None


# --- wrong use -------------------------------------------------------------------------------


def test_connection_calls_in_the_wrong_state_are_local_protocol_errors() -> None:
    client, _ = open_client()
    with pytest.raises(LocalProtocolError, match="connection_made\\(\\) in state open"):
        client.connection_made(parse_uri(URI), 0.0)
    with pytest.raises(LocalProtocolError, match="connection_failed\\(\\) in state open"):
        client.connection_failed(OSError("x"), 0.0)
    assert client.next_connect(0.0) is None
    assert client.next_connect(0.0, manual=True) is None


def test_submit_before_open_and_after_close() -> None:
    client = ClientProtocol(URI)
    with pytest.raises(ClientClosedError, match="not open yet") as info:
        client.submit(calls.kv_count())
    assert info.value.outcome_unknown is False
    client.close(0.0)
    with pytest.raises(ClientClosedError, match="the client is closed"):
        client.submit(calls.kv_count())


def test_too_large_is_checked_first_and_exactly_max_is_accepted() -> None:
    client = ClientProtocol(URI, max_message_size=64)
    request = calls.kv_set({"k": "x" * 100})
    with pytest.raises(RequestTooLargeError, match="max_message_size=64") as info:
        client.submit(request)
    assert isinstance(info.value, ValueError)
    client, server = open_client(max_message_size=64)
    head = len(calls.kv_set({"k": ""}).payload)
    exact = calls.kv_set({"k": "x" * (64 - head)})
    assert len(exact.payload) == 64
    client.submit(exact)
    with pytest.raises(RequestTooLargeError, match="65 bytes"):
        client.submit(calls.kv_set({"k": "x" * (65 - head)}))
    assert pump(client, server).texts == [exact.payload.decode()]
    assert client.pending == 1


# --- replies ---------------------------------------------------------------------------------


def test_replies_are_matched_in_order_with_err_and_errors() -> None:
    client, server = open_client()
    ids = [
        client.submit(calls.kv_count()),
        client.submit(calls.kv_get(key="a")),
        client.submit(calls.kv_keys()),
        client.submit(calls.sh_create()),
    ]
    assert client.pending == 4
    replies = [
        COUNT,
        '{"KV_GET_RSP":{"keys":{"a":[1,{"b":null}]},"st":1}}',
        '{"ERR":{"m":"","st":1000}}',
        '{"SH_NEW_RSP":{"m":"bad","st":26,"tkn":null}}',
    ]
    assert len(answer_in_turn(client, server, replies, 1.0)) == 4
    events = client.events()
    assert events[:2] == [ReplyReceived(ids[0], 3), ReplyReceived(ids[1], [1, {"b": None}])]
    err = failures(events)
    error = err[ids[2]]
    assert isinstance(error, ResponseError) and error.status is Status.UNKNOWN
    assert str(err[ids[2]]) == "KV_KEYS failed: UNKNOWN (1000)"
    assert str(err[ids[3]]) == "SH_NEW failed: PARAM_MISSING (26): bad"
    assert client.pending == 0 and client.state is State.OPEN


def test_reply_without_integer_status_or_with_a_bad_shape_fails_only_that_request() -> None:
    client, server = open_client()
    first = client.submit(calls.kv_count())
    second = client.submit(calls.kv_count())
    third = client.submit(calls.kv_count())
    fourth = client.submit(calls.kv_count())
    pump(client, server)
    client.receive_data(
        server.text('{"KV_COUNT_RSP":{"cnt":1}}')
        + server.text('{"KV_COUNT_RSP":{"cnt":1,"st":true}}')
        + server.text('{"KV_COUNT_RSP":{"cnt":"1","st":1}}')
        + server.text('{"KV_COUNT_RSP":{"st":7}}'),
        0.0,
    )
    errors = failures(client.events())
    assert isinstance(errors[first], RemoteProtocolError)
    assert "no integer 'st'" in str(errors[first])
    assert isinstance(errors[second], RemoteProtocolError)
    assert isinstance(errors[third], ReplyShapeError)
    assert "'cnt' should be int, got str" in str(errors[third])
    fourth_error = errors[fourth]
    assert isinstance(fourth_error, ResponseError) and fourth_error.status == 7
    assert "UNDEFINED_STATUS (7)" in str(errors[fourth])
    assert client.state is State.OPEN


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ('{"KV_KEYS_RSP":{"keys":[],"st":1}}', "received KV_KEYS_RSP while the oldest"),
        ("not json", "not valid JSON"),
        ('{"KV_COUNT_RSP":', "not valid JSON"),
        ("[1]", "not an object with one member"),
        ('{"a":{"st":1},"b":{"st":1}}', "not an object with one member"),
        ('{"KV_COUNT_RSP":5}', "reply's value is not an object"),
        ("[" * 20000 + "]" * 20000, "nested too deeply"),  # beyond any recursion limit
    ],
)
def test_protocol_violations_drop_the_connection(reply: str, reason: str) -> None:
    client, server = open_client()
    first = client.submit(calls.kv_count())
    pump(client, server)
    after = client.submit(calls.kv_count())  # written too, but its reply can no longer be matched
    pump(client, server)
    client.receive_data(server.text(reply) + server.text(COUNT), 1.0)
    events = client.events()
    (undecodable,) = [e for e in events if isinstance(e, UndecodableData)]
    assert undecodable.data == reply.encode() and reason in undecodable.reason
    error = lost(events).error
    assert isinstance(error, RemoteProtocolError) and error.data == reply.encode()
    for request_id in (first, after):
        failed = failures(events)[request_id]
        assert type(failed) is ConnectionLostError and failed.outcome_unknown is True
        assert failed.__cause__ is error
        assert str(failed).startswith(f"connection to {URI} lost: ")
    assert client.state is State.IDLE
    assert server.receive(client.data_to_send()).closes == [(1002, "unexpected reply")]


def test_reply_with_nothing_in_flight_is_a_violation() -> None:
    client, server = open_client()
    client.receive_data(server.text(COUNT), 0.0)
    events = client.events()
    assert "received KV_COUNT_RSP with no request in flight" in str(lost(events).error)


def test_binary_message_is_a_violation() -> None:
    client, server = open_client()
    client.receive_data(server.binary(b"\x00\x01"), 0.0)
    events = client.events()
    assert events[0] == UndecodableData(b"\x00\x01", "the server sent a binary message")
    assert isinstance(lost(events).error, RemoteProtocolError)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(OP_TEXT, b"{}", mask=b"abcd"), 1002),  # a server must not mask
        (frame(OP_TEXT, b"{}", rsv=4), 1002),  # RSV1 without an extension
        (frame(0x3, b""), 1002),  # reserved opcode
        (text_frame(b"\xff\xfe"), 1007),  # invalid UTF-8
        (frame(0x9, b"x" * 126), 1002),  # control frame too long
    ],
)
def test_undecodable_frames_are_surfaced_with_their_bytes(data: bytes, code: int) -> None:
    client, server = open_client()
    request_id = client.submit(calls.kv_count())
    pump(client, server)
    client.receive_data(data, 5.0)
    events = client.events()
    # The whole frame, or (for a complete text frame) the message it carried.
    assert isinstance(events[0], UndecodableData) and events[0].data in data
    error = lost(events).error
    assert isinstance(error, RemoteProtocolError) and f"({code}: " in str(error)
    assert error.data == events[0].data
    assert failures(events)[request_id].outcome_unknown is True  # type: ignore[attr-defined]
    ((sent_code, _),) = server.receive(client.data_to_send()).closes
    assert sent_code == code


def test_message_size_limit_while_reassembling() -> None:
    client, server = open_client(max_incoming_message_size=1024)
    ids = [client.submit(calls.kv_get(["k"])) for _ in range(2)]
    pump(client, server)
    body = '{"KV_GET_RSP":{"keys":{"k":"' + "é" * 200  # 2-byte chars, measured in bytes
    tail = '"},"st":1}}'
    exact = body + "x" * (1024 - len(body.encode()) - len(tail)) + tail
    assert len(exact.encode()) == 1024
    client.receive_data(server.text(exact, fragments=[10, 300, 700]), 0.0)
    (event,) = client.events()
    assert event.request_id == ids[0]  # type: ignore[union-attr]
    over = exact.replace('"k"', '"kk"')
    assert len(over.encode()) == 1025
    client.receive_data(server.text(over, fragments=[10, 300, 700]), 0.0)
    events = client.events()
    assert events[0].reason == "message larger than 1024 bytes"  # type: ignore[union-attr]
    assert "(1009: message larger than 1024 bytes)" in str(lost(events).error)
    assert server.receive(client.data_to_send()).closes == [
        (1009, "message larger than 1024 bytes")
    ]


@pytest.mark.parametrize("fragmented", [False, True])
def test_message_size_limit_for_whole_and_binary_messages(fragmented: bool) -> None:
    client, server = open_client(max_incoming_message_size=1024)
    cuts = [500] if fragmented else []
    client.receive_data(server.text("x" * 1025, fragments=cuts), 0.0)
    assert "larger than 1024" in str(lost(client.events()).error)
    client, server = open_client(max_incoming_message_size=1024)
    data = frame(OP_BINARY, b"x" * 600, fin=False) + frame(0, b"x" * 425)
    client.receive_data(data, 0.0)
    assert "larger than 1024" in str(lost(client.events()).error)


def test_no_incoming_limit() -> None:
    client, server = open_client(max_incoming_message_size=None)
    client.submit(calls.kv_get(key="k"))
    pump(client, server)
    big = "y" * 200_000
    client.receive_data(server.text('{"KV_GET_RSP":{"keys":{"k":"' + big + '"},"st":1}}'), 0.0)
    (event,) = client.events()
    assert event.value == big  # type: ignore[union-attr]


def test_fragmented_binary_message_is_one_violation() -> None:
    client, _ = open_client()
    client.receive_data(frame(OP_BINARY, b"ab", fin=False) + frame(0, b"cd"), 0.0)
    events = client.events()
    assert events[0] == UndecodableData(b"abcd", "the server sent a binary message")


# --- window, abandon, deadlines --------------------------------------------------------------


def test_window_limits_requests_in_flight() -> None:
    client, server = open_client(max_in_flight=2)
    assert not client.has_data_to_send and client.in_flight == 0
    ids = [client.submit(calls.sh_count(n)) for n in range(5)]
    assert client.has_data_to_send and client.in_flight == 2
    assert pump(client, server).texts == [
        '{"SH_COUNT":{"tkn":0}}',
        '{"SH_COUNT":{"tkn":1}}',
    ]
    client.receive_data(server.text('{"SH_COUNT_RSP":{"cnt":0,"st":1}}'), 0.0)
    assert client.events() == [ReplyReceived(ids[0], 0)]
    assert pump(client, server).texts == ['{"SH_COUNT":{"tkn":2}}']
    client.abandon(ids[3])  # queued: never written
    client.abandon(ids[1])  # in flight: its reply is dropped
    client.abandon(ids[1])  # twice is harmless
    client.abandon(999)  # unknown ids are ignored
    assert client.pending == 2 and client.in_flight == 2  # abandoned ones keep their place
    client.receive_data(server.text('{"SH_COUNT_RSP":{"cnt":1,"st":1}}'), 0.0)
    assert client.events() == []
    assert pump(client, server).texts == ['{"SH_COUNT":{"tkn":4}}']
    client.receive_data(
        server.text('{"SH_COUNT_RSP":{"cnt":2,"st":1}}')
        + server.text('{"SH_COUNT_RSP":{"cnt":4,"st":1}}'),
        0.0,
    )
    assert client.events() == [ReplyReceived(ids[2], 2), ReplyReceived(ids[4], 4)]
    assert client.pending == 0


def test_deadlines_time_out_queued_and_written_requests() -> None:
    client, server = open_client(max_in_flight=1, reply_grace=5.0)
    written = client.submit(calls.kv_count(), deadline=10.0)
    queued = client.submit(calls.kv_keys(), deadline=8.0)
    later = client.submit(calls.kv_count(), deadline=30.0)
    pump(client, server)
    assert client.next_deadline() == 8.0
    client.handle_timeout(7.9)
    assert client.events() == []
    client.handle_timeout(9.0)
    (event,) = client.events()
    assert event.request_id == queued  # type: ignore[union-attr]
    error = event.error  # type: ignore[union-attr]
    assert isinstance(error, NdbTimeoutError) and isinstance(error, TimeoutError)
    assert error.outcome_unknown is False and "KV_KEYS was not sent before its deadline" in str(
        error
    )
    assert client.next_deadline() == 10.0
    client.handle_timeout(10.0)
    (event,) = client.events()
    error = event.error  # type: ignore[union-attr]
    assert event.request_id == written and error.outcome_unknown is True  # type: ignore[union-attr]
    assert "KV_COUNT got no reply before its deadline" in str(error)
    # The head keeps its place until its grace period ends: stall at 10 + 5.
    assert client.next_deadline() == 15.0
    # Its late reply is dropped, and the queued request that was waiting goes out.
    client.receive_data(server.text(COUNT), 11.0)
    assert client.events() == []
    assert pump(client, server).texts == ['{"KV_COUNT":{}}']
    client.receive_data(server.text(COUNT), 11.0)
    assert client.events() == [ReplyReceived(later, 3)]
    assert client.next_deadline() is None


def test_head_request_overdue_past_grace_fails_the_connection() -> None:
    client, server = open_client(reply_grace=2.0)
    head = client.submit(calls.kv_count(), deadline=5.0)
    other = client.submit(calls.kv_count())
    pump(client, server)
    client.handle_timeout(5.0)
    assert [type(e) for e in client.events()] == [RequestFailed]
    assert client.state is State.OPEN
    client.handle_timeout(7.0)
    events = client.events()
    assert "grace period" in str(lost(events).error)
    assert set(failures(events)) == {other}
    assert client.state is State.IDLE
    assert head not in failures(events)


# --- keepalive -------------------------------------------------------------------------------


def test_keepalive_ping_and_pong() -> None:
    client, server = open_client(ping_interval=10.0, ping_timeout=5.0)
    assert client.next_deadline() == 10.0
    client.handle_timeout(9.0)
    assert pump(client, server).pings == []
    client.handle_timeout(10.0)
    assert pump(client, server).pings == [(1).to_bytes(8, "big")]
    assert client.next_deadline() == 15.0
    client.receive_data(server.data_to_send(), 12.0)  # the pong
    assert client.next_deadline() == 20.0
    client.handle_timeout(20.0)
    assert pump(client, server).pings == [(2).to_bytes(8, "big")]
    client.handle_timeout(24.9)
    assert client.events() == []
    client.handle_timeout(25.0)
    error = lost(client.events()).error
    assert "keepalive ping got no answer" in str(error)
    assert client.next_deadline() is None


def test_keepalive_detects_a_dead_server_when_pings_are_more_frequent_than_the_timeout() -> None:
    client, server = open_client(ping_interval=1.0, ping_timeout=5.0)
    server.answer_pings = False
    now = 0.0
    while client.state is State.OPEN and now < 60:
        now += 1.0
        client.handle_timeout(now)
    assert now == 6.0  # first ping at 1 s, unanswered by 6 s
    assert "keepalive" in str(lost(client.events()).error)


def test_server_ping_is_answered_and_unsolicited_pong_ignored() -> None:
    client, server = open_client()
    client.receive_data(server.ping(b"hello") + server.pong(b"x"), 0.0)
    assert client.events() == []
    assert pump(client, server).pongs == [b"hello"]
    assert client.state is State.OPEN


# --- the server ending the connection --------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "detail"),
    [
        (1001, "going away", "the server closed the connection (1001 going away)"),
        (1000, "", "the server closed the connection (1000)"),
        (None, "", "the server closed the connection (1005)"),
    ],
)
def test_server_close_frame_is_echoed(code: int | None, reason: str, detail: str) -> None:
    client, server = open_client()
    request_id = client.submit(calls.kv_count())
    pump(client, server)
    client.receive_data(close_frame(code, reason), 3.0)
    events = client.events()
    error = lost(events).error
    assert type(error) is ConnectionLostError and error.outcome_unknown is None
    assert str(error) == detail
    failed = failures(events)[request_id]
    assert failed.outcome_unknown is True  # type: ignore[attr-defined]
    assert str(failed) == (
        f"connection to {URI} lost: {detail}; the request was sent, so its outcome is unknown"
    )
    echoed = server.receive(client.data_to_send()).closes
    assert echoed == [(code if code is not None else 1005, "")]
    assert client.state is State.IDLE
    client.receive_data(text_frame(COUNT), 3.0)  # bytes for a connection given up
    assert client.events() == []


def test_eof_drops_the_connection() -> None:
    client, server = open_client()
    request_id = client.submit(calls.kv_count())
    pump(client, server)
    client.receive_data(b"", 1.0)
    events = client.events()
    assert "dropped without a close frame (1006)" in str(lost(events).error)
    assert failures(events)[request_id].outcome_unknown is True  # type: ignore[attr-defined]
    assert client.data_to_send() == b""  # nothing can be sent on a dead stream


def test_connection_lost_reported_by_the_transport() -> None:
    client, server = open_client()
    request_id = client.submit(calls.kv_count())
    pump(client, server)
    cause = OSError("reset")
    client.connection_lost(cause, 1.0)
    events = client.events()
    error = lost(events).error
    assert str(error) == "the socket failed: OSError('reset')" and error.__cause__ is cause
    assert failures(events)[request_id].outcome_unknown is True  # type: ignore[attr-defined]
    client.connection_lost(None, 1.0)  # IDLE: nothing more to report
    assert client.events() == []
    # While connecting, with no error object.
    client.connection_made(parse_uri(URI), 2.0)
    client.connection_lost(None, 2.0)
    error = lost(client.events()).error
    assert str(error) == "the socket failed" and error.__cause__ is None


# --- reconnecting ----------------------------------------------------------------------------


def test_queued_requests_survive_a_reconnect_written_ones_do_not() -> None:
    client, server = open_client(max_in_flight=1)
    written = client.submit(calls.kv_count())
    queued = client.submit(calls.kv_keys())
    pump(client, server)
    client.receive_data(b"", 10.0)
    events = client.events()
    assert set(failures(events)) == {written}
    assert client.pending == 1
    late = client.submit(calls.kv_clear())  # submitted while disconnected
    plan = client.next_connect(10.0)
    assert plan is not None and plan.at >= 10.0
    server, events = reconnect(client, plan.at)
    assert [type(e) for e in events] == [Connected]
    assert pump(client, server).texts == ['{"KV_KEYS":{}}']
    client.receive_data(server.text('{"KV_KEYS_RSP":{"keys":["a"],"st":1}}'), 11.0)
    assert client.events() == [ReplyReceived(queued, ["a"])]
    assert pump(client, server).texts == ['{"KV_CLEAR":{}}']
    client.receive_data(server.text('{"KV_CLEAR_RSP":{"cnt":1,"st":1}}'), 11.0)
    assert client.events() == [ReplyReceived(late, 1)]


def test_without_auto_reconnect_queued_requests_fail_unsent() -> None:
    client, server = open_client(max_in_flight=1, auto_reconnect=False)
    written = client.submit(calls.kv_count())
    queued = client.submit(calls.kv_keys())
    pump(client, server)
    client.receive_data(b"", 1.0)
    errors = failures(client.events())
    assert errors[written].outcome_unknown is True  # type: ignore[attr-defined]
    assert errors[queued].outcome_unknown is False  # type: ignore[attr-defined]
    assert "the request was not sent" in str(errors[queued])
    assert client.next_connect(1.0) is None
    server, events = reconnect(client, 2.0, manual=True)
    assert [type(e) for e in events] == [Connected]


def test_connection_failed_rotates_through_the_pool() -> None:
    client = ClientProtocol(["ws://a", "ws://b"], random=lambda: 0.0)
    plan = client.next_connect(0.0)
    assert plan is not None and plan.endpoint.host == "a"
    client.connection_failed(OSError("refused"), 0.0)
    plan = client.next_connect(0.0)
    assert plan is not None and plan.endpoint.host == "b" and plan.at == 0.0
    client.connection_failed(OSError("refused"), 0.0)
    plan = client.next_connect(0.0)
    assert plan is not None and plan.endpoint.host == "a" and plan.at == 0.1


# --- closing ---------------------------------------------------------------------------------


def test_close_when_open_waits_for_the_echo() -> None:
    client, server = open_client(ping_interval=30.0, max_in_flight=1)
    written = client.submit(calls.kv_count(), deadline=100.0)
    pump(client, server)
    queued = client.submit(calls.kv_count())
    client.close(1.0)
    events = client.events()
    errors = failures(events)
    assert errors[written].outcome_unknown is True  # type: ignore[attr-defined]
    assert errors[queued].outcome_unknown is False  # type: ignore[attr-defined]
    assert all(type(e) is ClientClosedError for e in errors.values())
    assert "the client was closed" in str(errors[queued])
    assert client.state is State.CLOSING and client.pending == 0
    assert client.next_deadline() == 6.0  # close_timeout; no more pings
    received = pump(client, server)
    assert received.closes == [(1000, "")] and received.texts == []
    client.close(1.5)  # again: nothing new
    assert client.events() == []
    # The server's late reply, a binary message, a ping: all ignored while closing.
    ignored = text_frame(COUNT) + frame(OP_BINARY, b"x") + frame(OP_PING, b"p")
    client.receive_data(ignored, 2.0)
    assert client.events() == [] and client.state is State.CLOSING
    assert client.data_to_send() == b""  # no pong after our close frame
    client.receive_data(server.close(1000), 2.0)  # the echo
    assert client.events() == [Closed()]
    assert client.state is State.CLOSED and client.next_deadline() is None
    assert client.next_connect(3.0, manual=True) is None
    client.close(4.0)
    client.connection_lost(None, 4.0)
    client.handle_timeout(100.0)
    client.receive_data(b"x", 4.0)
    assert client.events() == []


@pytest.mark.parametrize("how", ["timeout", "eof", "transport", "garbage"])
def test_close_handshake_ends_without_the_echo(how: str) -> None:
    client, server = open_client(close_timeout=2.0)
    client.close(1.0)
    assert pump(client, server).closes == [(1000, "")]
    if how == "timeout":
        client.handle_timeout(2.9)
        assert client.events() == []
        client.handle_timeout(3.0)
    elif how == "eof":
        client.receive_data(b"", 1.5)
    elif how == "transport":
        client.connection_lost(OSError("gone"), 1.5)
    else:
        client.receive_data(frame(OP_TEXT, b"{}", mask=b"abcd"), 1.5)
    events = client.events()
    assert events[-1] == Closed() and not any(isinstance(e, ConnectionLost) for e in events)
    assert client.state is State.CLOSED


@pytest.mark.parametrize("state", [State.NEW, State.CONNECTING, State.IDLE])
def test_close_without_an_open_connection_is_immediate(state: State) -> None:
    client = ClientProtocol(URI)
    if state is not State.NEW:
        start(client)
    queued = None
    if state is State.IDLE:
        client.connection_lost(None, 0.0)
        client.events()
    if state is not State.NEW:
        queued = client.submit(calls.kv_count())
    assert client.state is state
    client.close(0.0)
    events = client.events()
    assert events[-1] == Closed()
    if queued is not None:
        error = failures(events)[queued]
        assert type(error) is ClientClosedError and error.outcome_unknown is False
    assert client.state is State.CLOSED
    client.receive_data(b"HTTP/1.1 101 OK\r\n\r\n", 1.0)
    assert client.events() == []


def test_handshake_with_a_fake_server_helper_round_trip() -> None:
    """The helpers themselves: a refused server yields no Connected, an accepted one does."""
    client = ClientProtocol(URI)
    client.connection_made(parse_uri(URI), 0.0)
    assert [type(e) for e in handshake(client, FakeServer())] == [Connected]
    client2 = ClientProtocol(URI)
    client2.connection_made(parse_uri(URI), 0.0)
    assert [type(e) for e in handshake(client2, FakeServer(reject=404))] == [ConnectionLost]


def test_reconnect_drops_the_connection_and_plans_one_even_without_auto_reconnect() -> None:
    client, server = open_client(auto_reconnect=False)
    sent = client.submit(calls.kv_count())
    pump(client, server)
    client.reconnect(1.0)
    events = client.events()
    (failed,) = [e for e in events if isinstance(e, RequestFailed)]
    assert failed.request_id == sent
    assert isinstance(failed.error, ConnectionLostError) and failed.error.outcome_unknown is True
    assert "reconnect() was called" in str(lost(events).error)
    assert "socket" not in str(lost(events).error)
    # Planned although auto_reconnect is off, until a connection opens.
    plan = client.next_connect(1.0)
    assert plan is not None
    client.connection_failed(OSError("refused"), 1.0)
    assert client.next_connect(1.0) is not None
    new_server, opened = reconnect(client, 2.0)
    assert isinstance(opened[0], Connected)
    new_server.receive(client.data_to_send())
    client.receive_data(b"", 3.0)  # this one ends: no more plans without auto_reconnect
    client.events()
    assert client.next_connect(3.0) is None


def test_reconnect_while_idle_and_after_close() -> None:
    client, _server = open_client(auto_reconnect=False)
    client.receive_data(b"", 1.0)
    client.events()
    assert client.next_connect(1.0) is None
    client.reconnect(1.0)  # nothing to drop
    assert client.events() == [] and client.next_connect(1.0) is not None
    client.close(2.0)
    with pytest.raises(ClientClosedError):
        client.reconnect(2.0)


def test_connection_failed_after_close_is_ignored() -> None:
    client = ClientProtocol(URI)
    plan = client.next_connect(0.0)
    assert plan is not None
    client.close(0.0)
    client.connection_failed(OSError("too late"), 0.1)  # an attempt that raced with close()
    assert client.state is State.CLOSED


def test_connect_timeout_counts_from_the_start_of_the_attempt() -> None:
    client = ClientProtocol(URI, connect_timeout=3.0)
    plan = client.next_connect(10.0)
    assert plan is not None
    client.connection_made(plan.endpoint, 12.5, started=10.0)  # TCP and TLS took 2.5 s
    assert client.next_deadline() == 13.0


def test_open_fails_once_every_server_of_the_pool_failed_once() -> None:
    client = ClientProtocol(["ws://a", "ws://b"], random=lambda: 0.0)
    assert not client.open_failed and not client.has_connected
    client.connection_failed(OSError("refused"), 0.0)
    assert not client.open_failed  # b is still to be tried
    client.connection_failed(OSError("refused"), 0.0)
    assert client.open_failed


def test_a_refused_handshake_counts_in_the_first_round_and_an_open_ends_it() -> None:
    client = ClientProtocol(URI)
    server = FakeServer(reject=404)
    server.receive(start(client))
    client.receive_data(server.data_to_send(), 0.0)
    assert client.open_failed
    client2, _ = open_client()
    assert client2.has_connected and not client2.open_failed
