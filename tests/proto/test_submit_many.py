"""`ClientProtocol.submit_many`: a client pipeline's requests are queued all or none, in order,
framed for one write, and matched to their replies like single submissions."""

from __future__ import annotations

import pytest

from ndb_proto import calls
from ndb_proto.client import ClientProtocol
from ndb_proto.errors import ClientClosedError, ConnectionLostError, RequestTooLargeError
from ndb_proto.events import ConnectionLost, ReplyReceived, RequestFailed
from tests.proto.helpers import URI, FakeServer, open_client, pump, reconnect


def test_all_are_written_in_order_in_one_chunk_and_answered_in_order() -> None:
    client, server = open_client()
    # Replies of bounded size all: nothing waits behind an unbounded one (a GET's).
    requests = [calls.kv_set({"a": 1}), calls.kv_contains(["a"]), calls.kv_count()]
    ids = client.submit_many(requests, deadline=5.0)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert pump(client, server).texts == [r.payload.decode() for r in requests]
    client.receive_data(
        server.reply("KV_SET_RSP", {"st": 1})
        + server.reply("KV_CONTAINS_RSP", {"st": 1, "contains": ["a"]})
        + server.reply("KV_COUNT_RSP", {"st": 1, "cnt": 1}),
        1.0,
    )
    events = client.events()
    assert [(e.request_id, e.value) for e in events if isinstance(e, ReplyReceived)] == [
        (ids[0], None),
        (ids[1], ["a"]),
        (ids[2], 1),
    ]


def test_one_too_large_request_queues_none_of_them() -> None:
    client, server = open_client(max_message_size=64)
    with pytest.raises(RequestTooLargeError):
        client.submit_many([calls.kv_count(), calls.kv_set({"k": "x" * 100})])
    assert client.pending == 0
    assert pump(client, server).texts == []


@pytest.mark.parametrize("closed", [True, False])
def test_refused_before_open_and_after_close(closed: bool) -> None:
    client = ClientProtocol(URI)
    if closed:
        client.close(0.0)
    with pytest.raises(ClientClosedError) as info:
        client.submit_many([calls.kv_count()])
    assert info.value.outcome_unknown is False
    assert client.pending == 0


def test_refused_when_disconnected_without_auto_reconnect() -> None:
    client, _ = open_client(auto_reconnect=False)
    client.connection_lost(None, 1.0)
    with pytest.raises(ConnectionLostError) as info:
        client.submit_many([calls.kv_count()])
    assert info.value.outcome_unknown is False


def test_beyond_the_window_the_rest_waits_for_replies() -> None:
    client, server = open_client(max_in_flight=2)
    ids = client.submit_many([calls.kv_count() for _ in range(5)])
    assert len(pump(client, server).texts) == 2
    client.receive_data(server.reply("KV_COUNT_RSP", {"st": 1, "cnt": 0}), 1.0)
    assert len(pump(client, server).texts) == 1
    assert [e.request_id for e in client.events()] == ids[:1]


def test_queued_while_disconnected_then_written_on_reconnect_and_lost_ones_fail() -> None:
    client, server = open_client()
    written = client.submit_many([calls.kv_count(), calls.kv_count()])
    pump(client, server)
    client.connection_lost(None, 1.0)
    failed = [e for e in client.events() if isinstance(e, RequestFailed)]
    assert [e.request_id for e in failed] == written
    assert all(isinstance(e.error, ConnectionLostError) and e.error.outcome_unknown for e in failed)
    later = client.submit_many(
        [calls.kv_contains(["a"]), calls.kv_count()]
    )  # IDLE: queued, not written
    new_server, events = reconnect(client, 10.0, server=FakeServer())
    assert not any(isinstance(e, ConnectionLost) for e in events)
    assert len(pump(client, new_server).texts) == len(later)


def test_an_empty_list_queues_nothing() -> None:
    client, server = open_client()
    assert client.submit_many([]) == []
    assert pump(client, server).texts == []
