"""The public hypothesis strategies (`ndb_server.strategies`) stay true: every drawn call is
accepted by the client, every valid reply is accepted by a real client for its call, and every
broken reply fails its call with a protocol error (and ends the connection if it cannot be
read), never handed over as a result."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import assume, given

from ndb_proto import calls as core_calls
from ndb_proto.codec import MAX_VALUE_DEPTH, decode, encode
from ndb_proto.errors import ConnectionLostError, RemoteProtocolError, ResponseError
from ndb_proto.reconnect import Backoff
from ndb_server import MemoryServer
from ndb_server import strategies as nst
from ndb_transports.sync import NdbClient
from tests.proto.helpers import budget

QUICK = Backoff(initial=0.001, maximum=0.005)
"""Broken replies drop the connection often: reconnect at once."""
LIMIT = 8192
"""The largest request the server is started for; larger drawn calls are skipped (they fail
before anything is sent, and would leave the planned answer to the next call)."""


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@pytest.fixture(scope="module")
def client() -> Iterator[tuple[MemoryServer, NdbClient]]:
    with (
        MemoryServer(max_payload=LIMIT) as server,
        NdbClient(timeout=5, max_message_size=LIMIT, backoff=QUICK) as client,
    ):
        assert client.open(server.url)
        yield server, client


def test_calls_cover_the_whole_surface() -> None:
    table = nst._argument_table(nst.session_tokens())
    assert list(table) == [function.__name__ for function in core_calls.SURFACE]


def test_calls_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="names"):
        nst.calls(["kv_nope"])


@budget(200)
@given(nst.calls())
def test_every_drawn_call_is_valid(call: nst.Call) -> None:
    request = call.apply(core_calls)  # raises if the arguments are refused
    assert call.request_text() == request.payload.decode()
    (name,) = json.loads(call.request_text())
    assert name.lower().startswith(call.name[:3])


@budget(200)
@given(nst.storable_values())
def test_storable_values_round_trip_within_the_depth_limit(value: object) -> None:
    assert depth(value) <= MAX_VALUE_DEPTH
    assert decode(encode(value)) == value


@budget(20)
@given(nst.exchanges())
def test_exchanges_answer_every_call_with_its_reply(run: list[tuple[nst.Call, str, str]]) -> None:
    for _, request, reply in run:
        (rsp,) = json.loads(reply)
        assert rsp == next(iter(json.loads(request))) + "_RSP" or rsp == "SH_NEW_RSP"


def test_valid_replies_are_accepted_by_a_client(client: tuple[MemoryServer, NdbClient]) -> None:
    server, ndb = client

    @budget(40)
    @given(nst.valid_replies())
    def check(pair: tuple[nst.Call, str]) -> None:
        call, reply = pair
        assume(len(call.request_text().encode()) <= LIMIT)
        server.answer_next(reply)
        try:
            call.apply(ndb)
        except ResponseError:
            assert json.loads(reply)[next(iter(json.loads(reply)))]["st"] != 1

    check()


def test_broken_replies_end_the_connection() -> None:
    @budget(40)
    @given(nst.broken_replies())
    def check(pair: tuple[nst.Call, str]) -> None:
        call, broken = pair
        assume(len(call.request_text().encode()) <= LIMIT)
        # A server and a client of its own for each example: a broken reply ends or upsets
        # the connection, and nothing of one example may carry over into the next (a shared
        # client made the outcome depend on the examples before it).
        with (
            MemoryServer(max_payload=LIMIT) as server,
            NdbClient(timeout=5, max_message_size=LIMIT, auto_reconnect=False) as ndb,
        ):
            assert ndb.open(server.url)
            server.answer_next(broken)
            with pytest.raises((ConnectionLostError, RemoteProtocolError)) as info:
                call.apply(ndb)
        error = info.value
        # Unreadable: the connection ends; readable but wrong: this request fails alone.
        assert isinstance(
            error.__cause__ if isinstance(error, ConnectionLostError) else error,
            RemoteProtocolError,
        )

    check()
