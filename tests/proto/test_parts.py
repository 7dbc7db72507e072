"""The small modules: reconnect backoff, URIs, sessions, statuses, errors, the command table and
the pipeline used directly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndb_proto.client import ClientProtocol
from ndb_proto.commands import (
    COMMANDS,
    REPLY_NAMES,
    Command,
    ReplyShapeError,
    ignore,
    member,
    without_status,
)
from ndb_proto.errors import (
    ClientClosedError,
    ConnectionLostError,
    DecodeError,
    LocalProtocolError,
    NdbError,
    NdbTimeoutError,
    ProtocolError,
    RemoteProtocolError,
    ReplyMismatchError,
    RequestTooLargeError,
    ResponseError,
)
from ndb_proto.events import Connected, Event, ReplyReceived, RequestFailed
from ndb_proto.pipeline import Pipeline
from ndb_proto.reconnect import Backoff, ConnectPlan, Reconnector
from ndb_proto.session import Session
from ndb_proto.status import Status, status_or_int
from ndb_proto.uri import Endpoint, parse_uri
from tests.proto.helpers import FakeServer, budget, handshake

# --- reconnect -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial": 0}, "0 < initial <= maximum"),
        ({"initial": 2, "maximum": 1}, "0 < initial <= maximum"),
        ({"jitter": -0.1}, "jitter must be in"),
        ({"jitter": 1.1}, "jitter must be in"),
    ],
)
def test_backoff_is_checked(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**options)


def test_backoff_doubles_up_to_the_maximum_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, jitter=0.5)
    top, bottom = (lambda: 0.0), (lambda: 1.0)
    assert backoff.delay(0, top) == 0.0
    assert [backoff.delay(n, top) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [backoff.delay(n, bottom) for n in range(1, 5)] == [0.25, 0.5, 1.0, 2.0]
    assert backoff.delay(3, lambda: 0.5) == 1.5
    assert backoff.delay(10_000, top) == 4.0  # no overflow
    assert Backoff(jitter=0.0).delay(1, bottom) == 0.1


def endpoints(*hosts: str) -> list[Endpoint]:
    return [parse_uri(f"ws://{host}") for host in hosts]


def test_reconnector_rotates_then_backs_off_per_round() -> None:
    with pytest.raises(ValueError, match="at least one endpoint"):
        Reconnector([], Backoff(), lambda: 0.0)
    a, b, c = endpoints("a", "b", "c")
    rec = Reconnector([a, b, c], Backoff(initial=1.0, maximum=8.0, jitter=0.0), lambda: 0.0)
    assert rec.plan(5.0) == ConnectPlan(a, 5.0) and rec.current == a and rec.failures == 0
    rec.failed(5.0)
    assert rec.plan(5.0) == ConnectPlan(b, 5.0)  # the next server, at once
    rec.failed(5.0)
    assert rec.plan(5.0) == ConnectPlan(c, 5.0)
    rec.failed(5.0)  # a whole round failed: wait
    assert rec.plan(5.0) == ConnectPlan(a, 6.0) and rec.failures == 3
    assert rec.plan(7.0) == ConnectPlan(a, 7.0)  # the wait is over
    for _ in range(3):
        rec.failed(7.0)
    assert rec.plan(7.0) == ConnectPlan(a, 9.0)  # second round: twice as long


def test_reconnector_after_a_lost_connection() -> None:
    a, b = endpoints("a", "b")
    rec = Reconnector([a, b], Backoff(initial=1.0, jitter=0.0), lambda: 0.0, stable_after=5.0)
    rec.failed(0.0)
    rec.failed(0.0)
    assert rec.failures == 2
    rec.succeeded(10.0)
    rec.lost(15.0)  # lasted 5 s: stable, retried at once on the same server
    assert rec.failures == 0 and rec.plan(15.0) == ConnectPlan(a, 15.0)
    rec.succeeded(20.0)
    rec.lost(24.0)  # dropped soon after connecting: a failed attempt
    assert rec.failures == 1 and rec.plan(24.0) == ConnectPlan(b, 24.0)
    rec.lost(30.0)  # lost without a success in between: also a failure
    assert rec.failures == 2 and rec.plan(30.0) == ConnectPlan(a, 31.0)


# --- URIs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "secure", "host", "port", "target", "host_header"),
    [
        ("ws://db", False, "db", 80, "/", "db"),
        ("wss://db", True, "db", 443, "/", "db"),
        ("ws://db:1987", False, "db", 1987, "/", "db:1987"),
        ("wss://db:443/x", True, "db", 443, "/x", "db"),
        ("wss://db:80/", True, "db", 80, "/", "db:80"),
        ("ws://Db.Example:1987/a/b?x=1&y=2", False, "db.example", 1987, "/a/b?x=1&y=2", None),
        ("WS://db/?q", False, "db", 80, "/?q", "db"),
        ("ws://[::1]:1987/", False, "::1", 1987, "/", "[::1]:1987"),
        ("wss://[2001:db8::5]", True, "2001:db8::5", 443, "/", "[2001:db8::5]"),
        ("ws://127.0.0.1:1987", False, "127.0.0.1", 1987, "/", "127.0.0.1:1987"),
    ],
)
def test_parse_uri(
    uri: str, secure: bool, host: str, port: int, target: str, host_header: str | None
) -> None:
    endpoint = parse_uri(uri)
    assert endpoint == Endpoint(uri=uri, secure=secure, host=host, port=port, target=target)
    if host_header is not None:
        assert endpoint.host_header == host_header


@pytest.mark.parametrize(
    ("uri", "host", "target"),
    [
        ("memory://ndb-1/", "ndb-1", "/"),
        ("MEMORY://Test-Db", "test-db", "/"),
        ("memory://a/b?c", "a", "/b?c"),
    ],
)
def test_parse_memory_uri(uri: str, host: str, target: str) -> None:
    endpoint = parse_uri(uri)
    assert endpoint == Endpoint(
        uri=uri, secure=False, host=host, port=0, target=target, in_memory=True
    )
    assert endpoint.host_header == host  # no port in the upgrade request's Host header


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        (5, TypeError, "uri must be a str, got int"),
        (b"ws://db", TypeError, "uri must be a str, got bytes"),
        ("", ValueError, "uri must not be empty"),
        ("http://db", ValueError, "must start with ws://, wss:// or memory://"),
        ("db:1987", ValueError, "must start with ws://, wss:// or memory://"),
        ("memory://db:1987/", ValueError, "a memory:// uri has no port"),
        ("memory:///", ValueError, "no host"),
        ("ws://db:99999", ValueError, "invalid port"),
        ("ws://db:port", ValueError, "invalid port"),
        ("ws://", ValueError, "no host"),
        ("ws://:1987/", ValueError, "no host"),
        ("ws://user:pw@db", ValueError, "must not carry credentials"),
        ("ws://user@db", ValueError, "must not carry credentials"),
        ("ws://db/#frag", ValueError, "must not have a fragment"),
        ("ws://db/a b", ValueError, "must be percent-encoded"),
        ("ws://db/ä", ValueError, "must be percent-encoded"),
        ("ws://db/?x=\x7f", ValueError, "must be percent-encoded"),
        ("ws://db name/", ValueError, "must be percent-encoded"),
        ("ws://db\x00/", ValueError, "must be percent-encoded"),
        ("ws://" + "x" * 64 + ".example/", ValueError, "not a valid domain name"),
        ("ws://a..ä/", ValueError, "not a valid domain name"),
    ],
)
def test_bad_uris(uri: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_uri(uri)


@budget(300)
@given(
    scheme=st.sampled_from(["ws://", "wss://", "WS://"]),
    host=st.text(max_size=12) | st.sampled_from(["[::1]", "bücher.de", "127.0.0.1", "h"]),
    port=st.sampled_from(["", ":1987", ":443", ":0"]),
    rest=st.text(max_size=10),
)
def test_every_accepted_uri_can_be_used_for_a_handshake(
    scheme: str, host: str, port: str, rest: str
) -> None:
    uri = scheme + host + port + "/" + rest
    try:
        client = ClientProtocol(uri)
    except ValueError:
        return
    client.connection_made(client.endpoints[0], 0.0)
    server = FakeServer()
    events = handshake(client, server)
    assert [type(e) for e in events] == [Connected]
    assert server.upgrade is not None and server.upgrade.target == client.endpoints[0].target


def test_international_domain_names_are_sent_in_idna() -> None:
    client = ClientProtocol("ws://bücher.de:1987/x?y=%20")
    client.connection_made(client.endpoints[0], 0.0)
    request = client.data_to_send()
    assert b"Host: xn--bcher-kva.de:1987\r\n" in request
    assert request.startswith(b"GET /x?y=%20 HTTP/1.1\r\n")


# --- sessions, statuses ------------------------------------------------------------------------


def test_session() -> None:
    big = Session(2**64 - 1)
    assert big.tkn == 2**64 - 1 and big.tknValid and not Session(0).tknValid
    assert repr(Session(5)) == "Session(tkn=5)"
    assert Session(5) == Session(5) and Session(5) != Session(6)
    assert Session(5) != 5 and hash(Session(5)) == hash(5)
    assert len({Session(1), Session(1), Session(2)}) == 2

    class Bound(Session):
        pass

    assert repr(Bound(3)) == "Bound(tkn=3)" and Bound(3) == Session(3)
    with pytest.raises(AttributeError):
        Session(1).other = 2  # type: ignore[attr-defined]


PROTOCOL_STATUSES = {
    1: "OK", 2: "OP_CODE_INVALID", 3: "JSON_INVALID", 4: "PATH_INVALID", 5: "NO_PATH",
    10: "COMMAND_NOT_EXIST", 11: "COMMAND_MULTIPLE", 12: "COMMAND_TYPE", 13: "COMMAND_SYNTAX",
    14: "COMMAND_DISABLED", 22: "KEY_NOT_EXIST", 26: "PARAM_MISSING", 40: "VALUE_MISSING",
    41: "VALUE_TYPE_INVALID", 42: "VALUE_SIZE", 100: "SESSION_NOT_EXIST",
    101: "SESSION_TOKEN_INVALID", 102: "SESSION_OPEN_FAIL", 103: "SESSION_NEW_FAIL",
    120: "SAVE_START", 121: "SAVE_COMPLETE", 122: "SAVE_DIR_WRITE_FAIL", 123: "SAVE_ERROR",
    140: "LOADING", 141: "LOAD_COMPLETE", 142: "LOAD_ERROR", 1000: "UNKNOWN",
}  # fmt: skip
"""docs/protocol.md §5, code names in upper snake case."""


def test_statuses_are_those_of_the_protocol() -> None:
    assert {s.value: s.name for s in Status} == PROTOCOL_STATUSES
    assert status_or_int(141) is Status.LOAD_COMPLETE
    assert type(status_or_int(7)) is int and status_or_int(7) == 7
    assert status_or_int(0) == 0 and not isinstance(status_or_int(0), Status)


# --- errors ------------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(ResponseError, NdbError)
    assert issubclass(ConnectionLostError, NdbError) and issubclass(ConnectionLostError, OSError)
    assert issubclass(ClientClosedError, ConnectionLostError)
    assert issubclass(NdbTimeoutError, NdbError) and issubclass(NdbTimeoutError, TimeoutError)
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError) and issubclass(ProtocolError, NdbError)
    # Issue 11: every error ndb raises on purpose is an NdbError; ``except ValueError`` still
    # catches the two that report bad input.
    assert issubclass(RequestTooLargeError, ValueError) and issubclass(
        RequestTooLargeError, NdbError
    )
    assert issubclass(DecodeError, ValueError) and issubclass(DecodeError, NdbError)
    assert issubclass(ReplyShapeError, RemoteProtocolError)
    assert issubclass(ReplyMismatchError, RemoteProtocolError)


def test_every_error_class_is_in_the_errors_module_and_old_imports_still_work() -> None:
    import importlib
    import pkgutil

    import ndb_proto
    from ndb_proto import codec, commands, errors

    def errors_defined_in(module: object) -> list[type[BaseException]]:
        return [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseException)
            and value.__module__ == getattr(module, "__name__", None)
        ]

    for info in pkgutil.iter_modules(ndb_proto.__path__, "ndb_proto."):
        module = importlib.import_module(info.name)
        if module is not errors:
            assert errors_defined_in(module) == [], info.name
    defined = errors_defined_in(errors)
    assert all(issubclass(error, errors.NdbError) for error in defined)
    assert {error.__name__ for error in defined} <= set(ndb_proto.__all__)
    assert commands.ReplyShapeError is errors.ReplyShapeError
    assert commands.ReplyMismatchError is errors.ReplyMismatchError
    assert codec.DecodeError is errors.DecodeError


def test_response_error() -> None:
    error = ResponseError("KV_SET", 41, {"m": "Param type incorrect", "st": 41, "tkn": None})
    assert error.status is Status.VALUE_TYPE_INVALID and error.command == "KV_SET"
    assert str(error) == "KV_SET failed: VALUE_TYPE_INVALID (41): Param type incorrect"
    assert str(ResponseError("X", Status.OK, {"m": ""})) == "X failed: OK (1)"
    assert str(ResponseError("X", 1000, {"m": 5})) == "X failed: UNKNOWN (1000)"
    unknown = ResponseError("X", 999, {})
    assert unknown.status == 999 and str(unknown) == "X failed: UNDEFINED_STATUS (999)"
    odd = ResponseError("X", 3, "not a dict")  # type: ignore[arg-type]
    assert str(odd) == "X failed: JSON_INVALID (3)"


def test_outcome_flags_and_messages() -> None:
    sent = ConnectionLostError("gone", outcome_unknown=True)
    unsent = ClientClosedError("closed", outcome_unknown=False)
    about_connection = ConnectionLostError("reset")
    assert sent.outcome_unknown is True and str(sent).endswith("its outcome is unknown")
    assert unsent.outcome_unknown is False and str(unsent) == "closed; the request was not sent"
    assert about_connection.outcome_unknown is None and str(about_connection) == "reset"
    timeout = NdbTimeoutError("late", outcome_unknown=True)
    assert timeout.outcome_unknown is True and str(timeout) == "late"
    remote = RemoteProtocolError("bad", b"\x00")
    assert remote.data == b"\x00" and RemoteProtocolError("bad").data == b""


# --- the command table -------------------------------------------------------------------------


def test_command_table() -> None:
    assert len(COMMANDS) == 32
    assert all(name == command.name for name, command in COMMANDS.items())
    assert REPLY_NAMES["KV_SET_RSP"] is COMMANDS["KV_SET"]
    assert Command("FOO").rsp == "FOO_RSP" and Command("FOO").success == {1}
    special = {name: set(COMMANDS[name].success) for name in COMMANDS}
    assert {k: v for k, v in special.items() if v != {1}} == {
        "KV_SAVE": {121},
        "SH_SAVE": {121},
        "KV_LOAD": {140, 141},
        "SH_LOAD": {141},
    }


def test_reply_readers() -> None:
    body = {"cnt": 3, "st": 1}
    assert member("cnt", int)(body) == 3
    with pytest.raises(ReplyShapeError, match="'cnt' should be list, got int"):
        member("cnt", list)(body)
    with pytest.raises(ReplyShapeError, match="'nope' should be int, got NoneType"):
        member("nope", int)(body)
    assert member("cnt", int).__qualname__ == "member('cnt', int)"
    ignore(body)  # reads nothing
    assert without_status(body) == {"cnt": 3} and body == {"cnt": 3, "st": 1}
    assert issubclass(ReplyShapeError, RemoteProtocolError)


# --- the pipeline used directly ----------------------------------------------------------------


def test_pipeline_directly() -> None:
    events: list[Event] = []
    with pytest.raises(ValueError, match="max_in_flight must be >= 1"):
        Pipeline(0, events, 1.0)
    pipe = Pipeline(2, events, 1.0)
    count = COMMANDS["KV_COUNT"].request({}, member("cnt", int))
    keys = COMMANDS["KV_KEYS"].request({}, member("keys", list))
    assert pipe.expected_reply() is None and pipe.in_flight == 0
    first = pipe.submit(count, 5.0)
    second = pipe.submit(keys, None)
    third = pipe.submit(count, 7.0)
    assert pipe.has_sendable() and pipe.waiting == 3
    assert pipe.take_sendable() == [count, keys]
    assert pipe.in_flight == 2 and not pipe.has_sendable()
    assert pipe.expected_reply() == "KV_COUNT_RSP"
    with pytest.raises(RemoteProtocolError, match="received KV_KEYS_RSP while the oldest"):
        pipe.reply("KV_KEYS_RSP", {"st": 1})
    pipe.reply("KV_COUNT_RSP", {"cnt": 2, "st": 1})
    assert events == [ReplyReceived(first, 2)]
    # The answered request's deadline is still in the heap; expiring past it skips it.
    assert pipe.expire(5.0) is False
    assert pipe.next_deadline() == 7.0
    pipe.abandon(third)  # queued and abandoned: never written, never failed
    pipe.fail_queued(lambda: ConnectionLostError("x", outcome_unknown=False))
    assert len(events) == 1
    assert pipe.next_deadline() is None  # heap entries of finished requests are dropped
    pipe.fail_in_flight(lambda: ConnectionLostError("y", outcome_unknown=True))
    assert [type(e) for e in events] == [ReplyReceived, RequestFailed]
    assert events[1].request_id == second  # type: ignore[union-attr]
    assert pipe.waiting == 0 and pipe.in_flight == 0


def test_pipeline_stall_deadline_comes_before_later_deadlines() -> None:
    events: list[Event] = []
    pipe = Pipeline(4, events, 2.0)
    count = COMMANDS["KV_COUNT"].request({}, member("cnt", int))
    head = pipe.submit(count, 10.0)
    pipe.submit(count, 100.0)
    pipe.take_sendable()
    assert pipe.next_deadline() == 10.0
    assert pipe.expire(10.0) is False
    assert [e.request_id for e in events] == [head]  # type: ignore[union-attr]
    assert pipe.stall_deadline() == 12.0 and pipe.next_deadline() == 12.0
    assert pipe.expire(12.0) is True
    pipe.reply("ERR", {"st": 3})  # the head's late reply: dropped
    assert len(events) == 1 and pipe.stall_deadline() == 102.0  # the next head


def test_decode_reports_invalid_utf8_inside_a_string_as_a_decode_error() -> None:
    from ndb_proto.codec import DecodeError, decode

    # Our type and our words, whatever the JSON library underneath says.
    with pytest.raises(DecodeError, match=r"^text is not valid UTF-8$"):
        decode(b'{"KV_GET_RSP":{"keys":{"a":"\xff"},"st":1}}')


@pytest.mark.parametrize("text", [b'{"KV_COUNT_RSP":', '{"KV_COUNT_RSP":', "[1,]", b"nul"])
def test_decode_reports_invalid_json_as_a_decode_error(text: bytes | str) -> None:
    from ndb_proto.codec import DecodeError, decode

    with pytest.raises(DecodeError, match=r"^not valid JSON "):
        decode(text)


# --- keepalive and the handshake used directly --------------------------------------------------


def test_keepalive_directly() -> None:
    from ndb_proto.keepalive import Keepalive

    off = Keepalive(None, 20.0)
    off.start(0.0)
    assert off.deadline is None and off.ping_due(1e9) is None and not off.unanswered(1e9)

    keepalive = Keepalive(10.0, 3.0)
    assert keepalive.deadline is None  # nothing is due before a connection opens
    keepalive.start(100.0)
    assert keepalive.deadline == 110.0 and keepalive.ping_due(109.9) is None
    assert keepalive.ping_due(110.0) == (1).to_bytes(8, "big")
    assert keepalive.deadline == 113.0  # the answer is due before the next ping
    assert not keepalive.unanswered(112.9) and keepalive.unanswered(113.0)
    keepalive.pong_received()
    assert keepalive.deadline == 120.0 and not keepalive.unanswered(1e9)

    slow = Keepalive(1.0, 5.0)  # pings more often than their answer may take
    slow.start(0.0)
    assert slow.ping_due(1.0) == (1).to_bytes(8, "big") and slow.deadline == 2.0
    assert slow.ping_due(2.0) == (2).to_bytes(8, "big")
    assert slow.deadline == 3.0 and not slow.unanswered(5.9)  # the first ping keeps its deadline
    assert slow.unanswered(6.0)
    slow.stop()
    assert slow.deadline is None and slow.ping_due(1e9) is None and not slow.unanswered(1e9)


def test_client_handshake_directly() -> None:
    from ndb_proto.handshake import ClientHandshake, HandshakeAccepted, HandshakeFailed

    server = FakeServer(subprotocol="a")
    attempt = ClientHandshake(deadline=7.0, timeout=5.0)
    server.receive(attempt.request(parse_uri("ws://h:1/x"), ["a"], [(b"x-k", b"v")]))
    assert server.upgrade is not None and server.upgrade.target == "/x"
    response = server.data_to_send()
    assert attempt.receive(response[:5]) is None  # incomplete
    assert attempt.receive(response[5:] + b"frames") == HandshakeAccepted("a", b"frames")
    assert attempt.deadline == 7.0 and "longer than 5.0 s" in str(attempt.timed_out())

    refused = ClientHandshake(0.0, 1.0)
    FakeServer(reject=403).receive(refused.request(parse_uri("ws://h/"), [], []))
    outcome = refused.receive(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
    assert isinstance(outcome, HandshakeFailed) and outcome.data == b""
    assert "HTTP 403" in str(outcome.error)


def test_kv_find_paths_over_given_keys_are_read_unchecked() -> None:
    """Paths name nodes, not keys, so they cannot be checked against the keys asked for (a
    branch the roundtrip property reaches only by chance)."""
    from ndb_proto import calls

    request = calls.kv_find("$.x", "paths", ["a"])
    assert request.result({"paths": ["$['b']"], "st": 1}) == ["$['b']"]
