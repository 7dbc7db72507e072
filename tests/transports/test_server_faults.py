"""The faults of `test_faults` (and a few of `test_pipeline` and `test_keepalive`) that the
servers' own fault API can cause, in every flavour, against the socket server and the memory
server alike (see ON_BOTH_SERVERS in conftest).

Where a proxy version also watches the bytes (what was written, how often, which pings went
out) it stays beside these; where it watched nothing more, it lives only here. The proxy tests
also cover what no server does on purpose (half a frame, a FIN between two replies, raw bytes,
a refused or silent handshake, TLS). These use
``stall``, ``drop_connections``, ``restart`` and ``answer_next``, so they run without a socket
too. A stalled server reads nothing: a connection dropped while stalled never ran what was
written to it, which the tests below rely on to know what reached the engine. Which requests
the client has written is read from its core (``in_flight``), as the server cannot be asked
while it stalls.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from ndb_proto.errors import ConnectionLostError, NdbTimeoutError, RemoteProtocolError
from ndb_server import MemoryServer
from ndb_server.thread import ServerThread
from tests.transports.flavours import Flavour, Outcome, unwrap
from tests.transports.test_faults import (
    assert_lost,
    given_up_by_its_ping_then_reconnects,
    queued_request_times_out_unsent,
    two_written_then_given_up,
    waiting,
    written_and_queued_fail_with_no_reconnect,
)
from tests.transports.test_pipeline import execute, pipeline

Server = ServerThread | MemoryServer


def in_flight(client: Any) -> int:
    """Requests the client has written on its connection and not seen answered."""
    return int(unwrap(client)._proto.in_flight)


def test_a_drop_fails_what_was_written_once_and_sends_what_waited(
    flavour: Flavour, ndb_server: Server
) -> None:
    """max_in_flight=2 and 5 requests: 2 written to a stalled server, 3 waiting. The connection
    drops: the 2 fail with outcome unknown (they never ran, and are not resent), the 3 go out
    on the next connection, once the server answers again."""

    async def main() -> None:
        async with flavour.connected(ndb_server.url, max_in_flight=2) as c:
            await c.kv_set({"log": []})
            ndb_server.stall()
            async with flavour.group() as group:
                outcomes = [group.start(c.kv_arr_append, "log", [i]) for i in range(5)]
                await flavour.until(lambda: in_flight(c) == 2 and waiting(c) == 5)
                ndb_server.drop_connections()
                ndb_server.resume()
            lost = [i for i, o in enumerate(outcomes) if o.error is not None]
            assert len(lost) == 2
            for index in lost:
                assert_lost(outcomes[index], outcome_unknown=True)
            ran = sorted(set(range(5)) - set(lost))
            assert sorted(await c.kv_get(key="log")) == ran

    flavour.run(main)


def test_requests_wait_through_a_restart(flavour: Flavour, ndb_server: Server) -> None:
    """The server restarts (every connection drops, the data stays) and does not answer yet:
    requests made meanwhile wait for the reconnect, then each runs once."""

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"before": 1})
            ndb_server.stall()  # the reconnect's handshake waits for resume
            ndb_server.restart(keep_data=True)
            await flavour.noticed_drop(c)
            async with flavour.group() as group:
                outcomes = [group.start(c.kv_set, {f"k{i}": i}) for i in range(10)]
                await flavour.until(lambda: waiting(c) == 10)
                assert not any(o.done for o in outcomes)
                ndb_server.resume()
            assert [o.unwrap() for o in outcomes] == [None] * 10
            assert await c.kv_count() == 11
            assert ndb_server.connection_count == 1

    flavour.run(main)


def test_request_soon_after_a_drop_waits_for_the_reconnect(
    flavour: Flavour, ndb_server: Server
) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"a": 1})
            ndb_server.drop_connections()
            await flavour.noticed_drop(c)
            assert await c.kv_get(key="a") == 1
            assert await c.kv_count() == 1

    flavour.run(main)


def test_timeout_while_stalled_keeps_the_connection_in_step(
    flavour: Flavour, ndb_server: Server
) -> None:
    """A request times out while the server stalls; its late reply is dropped and the next
    request gets its own reply, on the same connection."""

    async def main() -> None:
        async with flavour.connected(ndb_server.url, reply_grace=10.0) as c:
            await c.kv_set({"a": "A", "b": "B"})
            ndb_server.stall()
            with pytest.raises(NdbTimeoutError) as info:
                await c.kv_get(key="a", timeout=0.05)
            assert info.value.outcome_unknown is True
            assert isinstance(info.value, TimeoutError)
            ndb_server.resume()
            assert await c.kv_get(key="b") == "B"
            assert await c.kv_get(key="a") == "A"
            assert c.is_connected()
            assert ndb_server.connection_count == 1

    flavour.run(main)


def test_stalled_connection_is_given_up_after_reply_grace(
    flavour: Flavour, ndb_server: Server
) -> None:
    """reply_grace after the oldest request timed out, its reply is presumed lost: the other
    request written on that connection fails (outcome unknown) and the client connects again."""

    async def main() -> None:
        async with flavour.connected(ndb_server.url, reply_grace=0.3) as c:
            await two_written_then_given_up(
                flavour, c, ndb_server, lambda: in_flight(c), first_timeout=0.1
            )
            assert await c.kv_set({"c": 1}) is None
            assert c.is_connected()

    flavour.run(main)


def test_queued_request_times_out_unsent(flavour: Flavour, ndb_server: Server) -> None:
    flavour.run(
        queued_request_times_out_unsent, flavour, ndb_server.url, ndb_server, in_flight, 0.05
    )


def test_without_auto_reconnect(flavour: Flavour, ndb_server: Server) -> None:
    async def main() -> None:
        options: dict[str, Any] = {"auto_reconnect": False, "max_in_flight": 1}
        async with flavour.connected(ndb_server.url, **options) as c:
            await written_and_queued_fail_with_no_reconnect(
                flavour, c, ndb_server, lambda: in_flight(c), ndb_server.drop_connections
            )
            assert ndb_server.connection_count == 0  # no automatic reconnect
            await c.reconnect()
            assert c.is_connected()
            assert await c.kv_count() == 0  # dropped while stalled: nothing ran

    flavour.run(main)


@pytest.mark.parametrize(
    "reply",
    ["{not json", '{"KV_GET_RSP":{"keys":{},"st":1}}', "[1]"],
    ids=["not-json", "wrong-reply-name", "not-an-object"],
)
def test_garbage_from_the_server(
    flavour: Flavour, ndb_server: Server, tmp_path: Any, reply: str
) -> None:
    fail_file = tmp_path / "fail.bin"

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            c.set_package_fail_file(str(fail_file))
            ndb_server.answer_next(reply)
            with pytest.raises(ConnectionLostError) as info:
                await c.kv_count()
            assert info.value.outcome_unknown is True
            assert isinstance(info.value.__cause__, RemoteProtocolError)
            assert reply.encode() in fail_file.read_bytes()
            assert await c.kv_count() == 0  # on a new connection
            assert ndb_server.connection_count == 1

    flavour.run(main)


def test_a_lost_connection_fails_a_written_pipeline_with_outcome_unknown(
    flavour: Flavour, ndb_server: Server
) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"log": []})
            ndb_server.stall()
            pipe = pipeline(flavour, c)
            for n in range(5):
                pipe.kv_arr_append("log", [n])
            outcome: Outcome
            async with flavour.group() as group:
                run = functools.partial(execute, flavour, pipe, raise_on_error=False)
                outcome = group.start(run)
                await flavour.until(lambda: in_flight(c) == 5)
                ndb_server.drop_connections()
                ndb_server.resume()
            results = outcome.unwrap()
            assert len(results) == 5
            for error in results:
                assert isinstance(error, ConnectionLostError) and error.outcome_unknown is True
            assert await c.kv_get(key="log") == []  # dropped unread, and nothing was resent

    flavour.run(main)


def test_a_timeout_covers_the_pipeline_and_keeps_the_connection_in_step(
    flavour: Flavour, ndb_server: Server
) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"a": "A", "b": "B"})
            ndb_server.stall()
            # Bounded replies, so both are written (nothing goes out behind a GET's reply).
            pipe = pipeline(flavour, c).kv_contains(["a"]).kv_contains(["b"])
            results = await execute(flavour, pipe, raise_on_error=False, timeout=0.05)
            assert all(isinstance(r, NdbTimeoutError) and r.outcome_unknown for r in results)
            ndb_server.resume()
            assert await c.kv_get(key="b") == "B"
            assert await execute(flavour, pipe.kv_get(key="a")) == ["A"]
            assert ndb_server.connection_count == 1

    flavour.run(main)


def test_ping_timeout_detects_a_stalled_server(flavour: Flavour, ndb_server: Server) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url, ping_interval=0.1, ping_timeout=0.15) as c:
            await given_up_by_its_ping_then_reconnects(flavour, c, ndb_server)

    flavour.run(main)
