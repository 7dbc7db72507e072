# ruff: noqa: E501
"""NemesisDB silently drops replies once 128 KiB of its output is unread. The core keeps the
size bounds of the replies in flight under a byte budget, writes nothing behind a reply of
unbounded size, checks the replies that can be checked against their request, and fails only
the request whose reply it cannot read."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndb_proto import calls
from ndb_proto.commands import (
    COMMANDS,
    ECHO_FACTOR,
    ECHOES_REQUEST,
    FIXED_REPLY_BOUND,
    UNBOUNDED,
    ReplyMismatchError,
)
from ndb_proto.errors import ConnectionLostError, RemoteProtocolError
from ndb_proto.events import ConnectionLost, ReplyReceived, RequestFailed, UndecodableData
from tests.proto.helpers import budget, compact, open_client, pump


def names(texts: list[str]) -> list[str]:
    return [text.split('"')[1] for text in texts]


def test_fixed_replies_fill_the_budget_by_their_bound() -> None:
    client, server = open_client(max_in_flight=64, reply_budget=8 * FIXED_REPLY_BOUND)
    for i in range(20):
        client.submit(calls.kv_set({f"k{i}": i}))
    assert len(pump(client, server).texts) == 8
    client.receive_data(server.text(compact({"KV_SET_RSP": {"st": 1}})), 0.0)
    assert len(pump(client, server).texts) == 1  # one answered, one more fits


def test_one_request_always_fits() -> None:
    client, server = open_client(max_in_flight=64, reply_budget=1)
    for i in range(3):
        client.submit(calls.kv_set({f"k{i}": i}))
    assert len(pump(client, server).texts) == 1
    client.receive_data(server.text(compact({"KV_SET_RSP": {"st": 1}})), 0.0)
    assert len(pump(client, server).texts) == 1


def test_nothing_is_written_behind_an_unanswered_unbounded_reply() -> None:
    """A GET's reply can be any size: a request behind it could find 128 KiB of the server's
    output unread and its reply dropped. So the GET is written last, and the window reopens
    once its reply is read."""
    client, server = open_client(max_in_flight=64)
    for submit in [calls.kv_count, lambda: calls.kv_get(["a"]), calls.kv_count]:
        client.submit(submit())
    client.submit(calls.kv_keys())
    client.submit(calls.kv_count())
    assert names(pump(client, server).texts) == ["KV_COUNT", "KV_GET"]
    client.receive_data(server.text(compact({"KV_COUNT_RSP": {"cnt": 0, "st": 1}})), 0.0)
    assert pump(client, server).texts == []  # the GET is still unanswered
    client.receive_data(server.text(get_reply({"a": 1})), 0.0)
    assert names(pump(client, server).texts) == ["KV_COUNT", "KV_KEYS"]
    client.receive_data(server.text(compact({"KV_COUNT_RSP": {"cnt": 0, "st": 1}})), 0.0)
    client.receive_data(server.text(compact({"KV_KEYS_RSP": {"keys": [], "st": 1}})), 0.0)
    assert names(pump(client, server).texts) == ["KV_COUNT"]
    assert [type(e) for e in client.events()] == [ReplyReceived] * 4


def test_an_unbounded_request_waits_while_the_replies_ahead_exceed_the_budget() -> None:
    """One request always fits, even over the budget; a GET behind it waits for its reply."""
    client, server = open_client(max_in_flight=64, reply_budget=1)
    client.submit(calls.kv_count())
    client.submit(calls.kv_get(["a"]))
    assert names(pump(client, server).texts) == ["KV_COUNT"]
    client.receive_data(server.text(compact({"KV_COUNT_RSP": {"cnt": 0, "st": 1}})), 0.0)
    assert names(pump(client, server).texts) == ["KV_GET"]


def test_an_abandoned_unbounded_request_still_holds_the_window() -> None:
    client, server = open_client(max_in_flight=64)
    get = client.submit(calls.kv_get(["a"]))
    client.submit(calls.kv_count())
    pump(client, server)
    client.abandon(get)  # its reply will still come, and may be large
    assert pump(client, server).texts == []
    client.receive_data(server.text(get_reply({"a": 1})), 0.0)
    assert names(pump(client, server).texts) == ["KV_COUNT"]


def test_a_reply_that_echoes_its_request_is_bounded_by_the_request() -> None:
    request = calls.kv_contains(["x" * 100, "y" * 100])
    bound = FIXED_REPLY_BOUND + ECHO_FACTOR * len(request.payload)
    client, server = open_client(max_in_flight=64, reply_budget=2 * bound + FIXED_REPLY_BOUND)
    for _ in range(3):
        client.submit(calls.kv_contains(["x" * 100, "y" * 100]))
        client.submit(calls.kv_count())
    assert names(pump(client, server).texts) == ["KV_CONTAINS", "KV_COUNT", "KV_CONTAINS"]


def test_every_command_declares_its_reply_size_class() -> None:
    unbounded = {name for name, c in COMMANDS.items() if c.reply == UNBOUNDED}
    echoing = {name for name, c in COMMANDS.items() if c.reply == ECHOES_REQUEST}
    assert unbounded == {"KV_GET", "KV_KEYS", "KV_FIND", "SH_GET", "SH_KEYS"}
    assert echoing == {"KV_CONTAINS", "SH_CONTAINS", "SH_EXISTS"} | {
        "KV_SAVE", "KV_LOAD", "SH_SAVE", "SH_LOAD"  # they echo the dataset name
    }  # fmt: skip
    for command in COMMANDS.values():
        assert (command.reply_bound < 0) == (command.reply == UNBOUNDED)
        assert (command.reply_per_request_byte > 0) == (command.reply == ECHOES_REQUEST)


WIDEST_FIXED_REPLIES = [
    {"SH_INFO_RSP": {"expires": True, "expiry": {"deleteSession": False, "duration": -(2**63), "extendOnGet": False, "extendOnSetAdd": False, "remaining": -(2**63)}, "keyCnt": 2**64 - 1, "shared": False, "st": 1000, "tkn": 2**64 - 1}},
    {"SV_INFO_RSP": {"persistEnabled": False, "serverVersion": "0.7.4", "st": 1000}},
    {"SH_INFO_ALL_RSP": {"st": 1000, "totalKeys": 2**64 - 1, "totalSessions": 2**64 - 1}},
    {"KV_FIND_RSP": {"m": "'rsp' invalid value", "st": 1000, "tkn": None}},
    {"KV_ARR_APPEND_RSP": {"m": "Missing parameter", "st": 1000, "tkn": None}},
]  # fmt: skip


@pytest.mark.parametrize("reply", WIDEST_FIXED_REPLIES)
def test_the_widest_fixed_replies_fit_their_bound(reply: dict[str, Any]) -> None:
    frame_header = 10  # the longest a server frame's header can be
    assert len(compact(reply).encode()) + frame_header <= FIXED_REPLY_BOUND


def escaped_fully(text: str) -> str:
    """``text`` with every character written as ``\\uXXXX`` (a pair beyond the BMP)."""
    return "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else "\\ud800\\udc00" for c in text)


@budget(100)
@given(st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=20), max_size=10))
def test_an_echoed_reply_fits_its_bound_even_fully_escaped(keys: list[str]) -> None:
    """The widest a server could write an echo of the request: every key found, every
    character escaped, the widest status."""
    request = calls.kv_contains(keys)
    items = ",".join(f'"{escaped_fully(key)}"' for key in keys)
    widest = '{"KV_CONTAINS_RSP":{"contains":[' + items + '],"st":1000}}'
    command = request.command
    bound = command.reply_bound + command.reply_per_request_byte * len(request.payload)
    assert len(widest.encode()) + 10 <= bound


def get_reply(keys: dict[str, Any]) -> str:
    return compact({"KV_GET_RSP": {"keys": keys, "st": 1}})


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (calls.kv_get(["a"]), get_reply({"b": 2})),
        (calls.kv_get(key="a"), get_reply({"b": 2})),
        (calls.sh_get(5, ["a"]), compact({"SH_GET_RSP": {"keys": {"z": 1}, "st": 1}})),
        (calls.kv_contains(["a", "b"]), compact({"KV_CONTAINS_RSP": {"contains": ["b", "a"], "st": 1}})),
        (calls.sh_session_exists([1, 2]), compact({"SH_EXISTS_RSP": {"exist": [3], "st": 1}})),
        (calls.kv_find("$", keys=["a"]), compact({"KV_FIND_RSP": {"keys": ["b"], "st": 1}})),
        (calls.kv_find("$", "kv", ["a"]), compact({"KV_FIND_RSP": {"keys": {"b": 1}, "st": 1}})),
        (calls.sh_info(7), compact({"SH_INFO_RSP": {"expires": False, "keyCnt": 0, "shared": False, "st": 1, "tkn": 8}})),
        (calls.sh_end(7), compact({"SH_END_RSP": {"st": 1, "tkn": 8}})),
        (calls.kv_save("a"), compact({"KV_SAVE_RSP": {"duration": 1, "name": "b", "st": 121}})),
        (calls.kv_load("a"), compact({"KV_LOAD_RSP": {"duration": 1, "keys": 0, "name": "b", "sessions": 0, "st": 141}})),
        (calls.sh_save("a"), compact({"SH_SAVE_RSP": {"duration": 1, "name": "b", "st": 121}})),
        (calls.sh_load("a"), compact({"SH_LOAD_RSP": {"keys": 0, "name": "b", "sessions": 0, "st": 141}})),
    ],
)  # fmt: skip
def test_a_reply_that_answers_another_request_fails_the_connection(
    request_: Any, reply: str
) -> None:
    """A dropped reply shifts every later one onto the request before it. Where the reply
    carries what was asked, the shift is seen and nothing reaches the wrong caller."""
    client, server = open_client(auto_reconnect=False)
    head = client.submit(request_)
    behind = client.submit(calls.kv_count())
    pump(client, server)
    client.receive_data(server.text(reply), 0.0)
    events = client.events()
    assert isinstance(events[0], UndecodableData)
    failed = {e.request_id: e.error for e in events if isinstance(e, RequestFailed)}
    assert set(failed) == {head, behind}
    # The request behind was written only if the head's reply is bounded (else it waited).
    written = {head, behind} if request_.command.reply != UNBOUNDED else {head}
    for request_id, error in failed.items():
        assert isinstance(error, ConnectionLostError)
        assert error.outcome_unknown is (request_id in written)
        assert isinstance(error.__cause__, ReplyMismatchError)
    (lost,) = [e for e in events if isinstance(e, ConnectionLost)]
    assert "answers another request" in str(lost.error)


def test_a_mismatch_is_seen_even_for_an_abandoned_request() -> None:
    client, server = open_client(auto_reconnect=False)
    head = client.submit(calls.kv_get(["a"]))
    behind = client.submit(calls.kv_get(["c"]))
    pump(client, server)
    client.abandon(head)
    client.receive_data(server.text(get_reply({"c": 3})), 0.0)
    events = client.events()
    (failed,) = [e for e in events if isinstance(e, RequestFailed)]
    assert failed.request_id == behind and isinstance(failed.error, ConnectionLostError)


def test_matching_replies_pass_the_checks() -> None:
    client, server = open_client()
    ids = [
        client.submit(calls.kv_get(["a", "b"])),
        client.submit(calls.kv_contains(["a", "b", "a"])),
        client.submit(calls.sh_info(7)),
    ]
    for reply in [
        get_reply({"b": 2}),
        compact({"KV_CONTAINS_RSP": {"contains": ["a", "a"], "st": 1}}),
        compact({"SH_INFO_RSP": {"keyCnt": None, "shared": None, "st": 100, "tkn": 8}}),
    ]:
        pump(client, server)
        client.receive_data(server.text(reply), 0.0)
    events = client.events()
    assert [type(e) for e in events] == [ReplyReceived, ReplyReceived, RequestFailed]
    assert [e.request_id for e in events] == ids  # type: ignore[union-attr]


def test_a_reply_too_deep_to_decode_fails_only_its_request() -> None:
    """NemesisDB stores values nested up to 1024 levels; the decoder reads fewer. The reply is
    whole and named as expected, so only its request fails; the next gets its own reply."""
    client, server = open_client()
    deep = client.submit(calls.kv_get(["deep"]))
    after = client.submit(calls.kv_count())
    pump(client, server)
    value = "[" * 20000 + "]" * 20000
    reply = '{"KV_GET_RSP":{"keys":{"deep":' + value + '},"st":1}}'
    client.receive_data(server.text(reply), 0)
    pump(client, server)  # the KV_COUNT waited behind the KV_GET's unbounded reply
    client.receive_data(server.text('{"KV_COUNT_RSP":{"cnt":4,"st":1}}'), 0)
    events = client.events()
    assert isinstance(events[0], UndecodableData)
    assert isinstance(events[1], RequestFailed) and events[1].request_id == deep
    assert isinstance(events[1].error, RemoteProtocolError)
    assert "cannot be read" in str(events[1].error)
    assert events[2] == ReplyReceived(after, 4)
    assert client.state.value == "open"


def test_an_undecodable_reply_for_an_abandoned_request_is_dropped_quietly() -> None:
    client, server = open_client()
    deep = client.submit(calls.kv_get(["deep"]))
    pump(client, server)
    client.abandon(deep)
    reply = '{"KV_GET_RSP":{"keys":{"deep":' + "[" * 20000 + "]" * 20000 + '},"st":1}}'
    client.receive_data(server.text(reply), 0)
    assert [type(e) for e in client.events()] == [UndecodableData]
    assert client.in_flight == 0


def test_an_undecodable_reply_named_otherwise_is_a_violation() -> None:
    client, server = open_client(auto_reconnect=False)
    client.submit(calls.kv_get(["a"]))
    pump(client, server)
    client.receive_data(server.text('{"KV_COUNT_RSP":{"cnt":' + "[" * 20000 + "}}"), 0)
    assert any(isinstance(e, ConnectionLost) for e in client.events())


def test_reply_budget_must_be_positive() -> None:
    from ndb_proto import ClientProtocol

    with pytest.raises(ValueError, match="reply_budget must be >= 1"):
        ClientProtocol("ws://h/", reply_budget=0)


def test_kv_find_over_no_given_keys_searches_all_keys_and_is_not_checked() -> None:
    client, server = open_client()
    found = client.submit(calls.kv_find("$", "keys", []))
    pump(client, server)
    client.receive_data(server.text(compact({"KV_FIND_RSP": {"keys": ["x"], "st": 1}})), 0.0)
    assert client.events() == [ReplyReceived(found, ["x"])]
