# ruff: noqa: E501
"""NemesisDB silently drops replies once 128 KiB of its output is unread. The core keeps the
replies expected in flight under a byte budget, checks the replies that can be checked against
their request, and fails only the request whose reply it cannot read."""

from __future__ import annotations

from typing import Any

import pytest

from ndb_proto import calls
from ndb_proto.commands import COMMANDS, ReplyMismatchError
from ndb_proto.errors import ConnectionLostError, RemoteProtocolError
from ndb_proto.events import ConnectionLost, ReplyReceived, RequestFailed, UndecodableData
from ndb_proto.pipeline import SMALL_REPLY_ESTIMATE, UNKNOWN_REPLY_ESTIMATE
from tests.proto.helpers import compact, open_client, pump


def test_small_replies_use_the_whole_window() -> None:
    client, server = open_client(max_in_flight=8, reply_budget=1024)
    for i in range(20):
        client.submit(calls.kv_set({f"k{i}": i}))
    assert len(pump(client, server).texts) == 8  # 8 x 64 bytes fit in 1024


def test_unknown_reply_sizes_are_budgeted_until_seen_then_learned() -> None:
    budget = 4 * UNKNOWN_REPLY_ESTIMATE
    client, server = open_client(max_in_flight=64, reply_budget=budget)
    for i in range(20):
        client.submit(calls.kv_get([f"k{i}"]))
    # No KV_GET reply seen yet: each is assumed large, so only 4 go out.
    assert len(pump(client, server).texts) == 4
    small = compact({"KV_GET_RSP": {"keys": {}, "st": 1}})
    client.receive_data(server.text(small), 0.0)
    # One small reply seen: the estimate drops, and the window fills up with the rest.
    assert len(pump(client, server).texts) == 16


def test_a_large_reply_shrinks_the_window_for_its_command_only() -> None:
    client, server = open_client(max_in_flight=64, reply_budget=10_000)
    client.submit(calls.kv_get(["big"]))
    pump(client, server)
    big = compact({"KV_GET_RSP": {"keys": {"big": "x" * 6000}, "st": 1}})
    client.receive_data(server.text(big), 0.0)
    for i in range(4):
        client.submit(calls.kv_get([f"k{i}"]))
        client.submit(calls.kv_count())
    texts = pump(client, server).texts
    # One KV_GET (it always fits: nothing in flight), then the small KV_COUNT behind it; the
    # next KV_GET would exceed the budget, so it waits, and the FIFO order is kept.
    assert [t.split('"')[1] for t in texts] == ["KV_GET", "KV_COUNT"]
    assert client.in_flight == 2


def test_estimates_decay() -> None:
    client, server = open_client(max_in_flight=64, reply_budget=10_000)
    pipeline = client._pipeline
    get = COMMANDS["KV_GET"]
    assert pipeline.estimate(get) == UNKNOWN_REPLY_ESTIMATE
    assert pipeline.estimate(COMMANDS["KV_SET"]) == SMALL_REPLY_ESTIMATE
    client.submit(calls.kv_get(["a"]))
    pump(client, server)
    client.receive_data(
        server.text(compact({"KV_GET_RSP": {"keys": {"a": "x" * 900}, "st": 1}})), 0
    )
    first = pipeline.estimate(get)
    assert first > 900
    for _ in range(5):
        client.submit(calls.kv_get(["a"]))
        pump(client, server)
        client.receive_data(server.text(compact({"KV_GET_RSP": {"keys": {}, "st": 1}})), 0)
    assert 25 < pipeline.estimate(get) < first * 0.9**4


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
    for error in failed.values():
        assert isinstance(error, ConnectionLostError) and error.outcome_unknown is True
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
    pump(client, server)
    client.receive_data(
        server.text(get_reply({"b": 2}))
        + server.text(compact({"KV_CONTAINS_RSP": {"contains": ["a", "a"], "st": 1}}))
        + server.text(compact({"SH_INFO_RSP": {"keyCnt": None, "shared": None, "st": 100, "tkn": 8}})),
        0.0,
    )  # fmt: skip
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
    client.receive_data(server.text(reply) + server.text('{"KV_COUNT_RSP":{"cnt":4,"st":1}}'), 0)
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
