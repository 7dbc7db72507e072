"""``read_reply_limit``: a user who knows every read's reply stays under a size declares it, and
reads are pipelined like writes, each counted at that size. A reply found larger ends the
connection before anything behind it is matched: the server may have dropped those replies."""

from __future__ import annotations

import pytest

from ndb_proto import ClientProtocol, calls
from ndb_proto.commands import FIXED_REPLY_BOUND
from ndb_proto.errors import ConnectionLostError, ReadReplyLimitError, RemoteProtocolError
from ndb_proto.events import ConnectionLost, ReplyReceived, RequestFailed, UndecodableData
from ndb_proto.pipeline import Pipeline
from tests.proto.helpers import compact, open_client, pump

LIMIT = 2048


def get_reply(key: str, value: str) -> str:
    return compact({"KV_GET_RSP": {"keys": {key: value}, "st": 1}})


def test_reads_pipeline_each_counted_at_the_declared_size() -> None:
    client, server = open_client(
        max_in_flight=64, reply_budget=4 * LIMIT + FIXED_REPLY_BOUND, read_reply_limit=LIMIT
    )
    for i in range(6):
        client.submit(calls.kv_get([f"k{i}"]))
    client.submit(calls.kv_count())
    assert len(pump(client, server).texts) == 4  # four reads fill the budget but one reply's
    client.receive_data(server.text(get_reply("k0", "v")), 0.0)
    assert len(pump(client, server).texts) == 1  # one read answered, one more written
    assert client.in_flight == 4


def test_without_a_limit_reads_are_not_pipelined() -> None:
    client, server = open_client(max_in_flight=64)
    for i in range(3):
        client.submit(calls.kv_get([f"k{i}"]))
    assert len(pump(client, server).texts) == 1


@pytest.mark.parametrize("abandoned", [False, True])
def test_a_reply_over_the_limit_is_matched_then_the_connection_is_given_up(
    abandoned: bool,
) -> None:
    client, server = open_client(max_in_flight=4, read_reply_limit=LIMIT)
    big = client.submit(calls.kv_get(["big"]))
    behind = [client.submit(calls.kv_get([f"k{i}"])) for i in range(3)]
    queued = client.submit(calls.kv_count())  # no room: it waits for the next connection
    assert len(pump(client, server).texts) == 4
    if abandoned:
        client.abandon(big)
    reply = get_reply("big", "x" * LIMIT)
    client.receive_data(server.text(reply) + server.text(get_reply("k0", "v")), 0.0)
    events = client.events()
    if not abandoned:
        assert events[0] == ReplyReceived(big, {"big": "x" * LIMIT})  # its own reply, whole
        events = events[1:]
    failed = {e.request_id: e.error for e in events if isinstance(e, RequestFailed)}
    assert set(failed) == set(behind)  # k0's reply, read behind it, is not trusted either
    for error in failed.values():
        assert isinstance(error, ConnectionLostError) and error.outcome_unknown is True
        assert isinstance(error.__cause__, ReadReplyLimitError)
    (lost,) = [e for e in events if isinstance(e, ConnectionLost)]
    assert isinstance(lost.error, ReadReplyLimitError)
    assert str(len(reply)) in str(lost.error) and str(LIMIT) in str(lost.error)
    assert client.pending == 1 and queued not in failed  # it waits for the next connection
    assert pump(client, server).closes == [(1000, "reply larger than expected")]


def test_a_reply_at_the_limit_keeps_the_connection() -> None:
    client, server = open_client(max_in_flight=64, read_reply_limit=LIMIT)
    overhead = len(get_reply("k", ""))
    get = client.submit(calls.kv_get(["k"]))
    after = client.submit(calls.kv_get(["k"]))
    pump(client, server)
    client.receive_data(server.text(get_reply("k", "x" * (LIMIT - overhead))), 0.0)
    client.receive_data(server.text(get_reply("k", "y")), 0.0)
    assert client.events() == [
        ReplyReceived(get, {"k": "x" * (LIMIT - overhead)}),
        ReplyReceived(after, {"k": "y"}),
    ]


def test_only_reads_are_held_to_the_limit() -> None:
    """Other replies have exact bounds of their own; a large echo is no breach."""
    client, server = open_client(max_in_flight=64, read_reply_limit=FIXED_REPLY_BOUND)
    keys = ["x" * 300, "y" * 300]
    contains = client.submit(calls.kv_contains(keys))
    pump(client, server)
    client.receive_data(server.text(compact({"KV_CONTAINS_RSP": {"contains": keys, "st": 1}})), 0)
    assert client.events() == [ReplyReceived(contains, keys)]


def test_an_undecodable_reply_over_the_limit_also_ends_the_connection() -> None:
    client, server = open_client(max_in_flight=64, read_reply_limit=LIMIT)
    deep = client.submit(calls.kv_get(["deep"]))
    behind = client.submit(calls.kv_get(["k"]))
    pump(client, server)
    value = "[" * 20000 + "]" * 20000
    client.receive_data(server.text('{"KV_GET_RSP":{"keys":{"deep":' + value + '},"st":1}}'), 0)
    events = client.events()
    assert isinstance(events[0], UndecodableData)
    assert isinstance(events[1], RequestFailed) and events[1].request_id == deep
    assert isinstance(events[1].error, RemoteProtocolError)
    assert isinstance(events[2], RequestFailed) and events[2].request_id == behind
    assert isinstance(events[2].error.__cause__, ReadReplyLimitError)
    assert isinstance(events[-1], ConnectionLost)


def test_an_undecodable_reply_under_the_limit_fails_only_its_request() -> None:
    client, server = open_client(max_in_flight=64, read_reply_limit=64 * 1024)
    deep = client.submit(calls.kv_get(["deep"]))
    behind = client.submit(calls.kv_get(["k"]))
    pump(client, server)
    value = "[" * 20000 + "]" * 20000
    client.receive_data(server.text('{"KV_GET_RSP":{"keys":{"deep":' + value + '},"st":1}}'), 0)
    client.receive_data(server.text(get_reply("k", "v")), 0)
    events = client.events()
    assert [type(e) for e in events] == [UndecodableData, RequestFailed, ReplyReceived]
    assert events[2] == ReplyReceived(behind, {"k": "v"})
    assert events[1].request_id == deep  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [FIXED_REPLY_BOUND - 1, 0, -5])
def test_the_limit_is_at_least_a_fixed_reply(bad: int) -> None:
    with pytest.raises(ValueError, match="read_reply_limit"):
        ClientProtocol("ws://h/", read_reply_limit=bad)
    with pytest.raises(ValueError, match="read_reply_limit"):
        Pipeline(1, [], 1.0, read_reply_limit=bad)


@pytest.mark.parametrize("bad", [2048.0, "2048", True])
def test_the_limit_is_an_int(bad: object) -> None:
    with pytest.raises(TypeError, match="read_reply_limit"):
        ClientProtocol("ws://h/", read_reply_limit=bad)  # type: ignore[arg-type]
