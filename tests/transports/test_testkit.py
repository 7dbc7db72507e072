"""The test kit through real clients of every flavour: `MemoryServer` (memory:// URLs, the
virtual clock, several clients and threads) and the faults on cue, which must behave the same on
the memory and the socket server."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

import ndb_transports.sync as ndb_sync
from ndb_proto.errors import ConnectionLostError, NdbTimeoutError, RemoteProtocolError
from ndb_proto.reconnect import Backoff
from ndb_proto.uri import parse_uri
from ndb_server import MemoryServer
from ndb_server.faults import RANDOM_FAULTS, FaultControls, FaultPlan
from ndb_server.thread import ServerThread
from ndb_transports import _memory
from tests.transports.flavours import Flavour
from tests.transports.test_pipeline import execute, pipeline

NO_RECONNECT: dict[str, Any] = {"auto_reconnect": False}


@pytest.fixture(params=["memory", "socket"])
def server(request: pytest.FixtureRequest) -> Iterator[MemoryServer | ServerThread]:
    """Each kind of test server, with the same fault API."""
    if request.param == "memory":
        with MemoryServer() as memory:
            yield memory
    else:
        with ServerThread() as thread:
            yield thread


# -- MemoryServer ----------------------------------------------------------------------------


def test_every_flavour_talks_to_a_memory_url(flavour: Flavour) -> None:
    with MemoryServer() as server:

        async def main() -> None:
            assert server.url.startswith("memory://")
            async with flavour.connected(server.url) as client:
                await client.kv_set({"a": [1, {"b": "ä"}]})
                assert await client.kv_get(key="a") == [1, {"b": "ä"}]
                assert server.connection_count == 1
            await flavour.until(lambda: server.connection_count == 0)

        flavour.run(main)
        assert '"cnt":1' in server.engine.handle_text('{"KV_COUNT":{}}')


def test_connect_pool_skips_a_memory_server_that_is_not_running(flavour: Flavour) -> None:
    with MemoryServer() as server:

        async def main() -> None:
            client = flavour.client()
            assert await client.connect_pool(["memory://nobody-here/", server.url]) is True
            assert await client.kv_count() == 0
            await client.close()
            assert await flavour.client().open("memory://nobody-here/") is False

        flavour.run(main)


def test_a_closed_memory_server_refuses_and_closes_its_clients(flavour: Flavour) -> None:
    server = MemoryServer()

    async def main() -> None:
        client = flavour.client(**NO_RECONNECT)
        assert await client.open(server.url) is True
        server.close()
        await flavour.noticed_drop(client)
        with pytest.raises(ConnectionLostError):
            await client.kv_count()
        assert await flavour.client().open(server.url) is False
        await client.close()

    flavour.run(main)


def test_advance_expires_sessions_at_the_sweep_without_sleeping(flavour: Flavour) -> None:
    with MemoryServer() as server:

        async def main() -> None:
            async with flavour.connected(server.url) as client:
                session = await client.sh_create(durationSeconds=60, deleteSessionOnExpire=True)
                server.advance(59)
                assert await client.sh_session_exists([session.tkn]) == [session.tkn]
                server.advance(1.5)  # expired at 60, but removed only by the sweep at 65
                assert await client.sh_session_exists([session.tkn]) == [session.tkn]
                server.advance(4.5)
                assert await client.sh_session_exists([session.tkn]) == []
                assert server.now == 65

        flavour.run(main)


def test_advance_pings_an_idle_client_then_drops_it(flavour: Flavour) -> None:
    with MemoryServer(idle_ping=10, idle_timeout=20) as server:

        async def main() -> None:
            client = flavour.client(**NO_RECONNECT)
            assert await client.open(server.url) is True
            server.advance(10)  # pinged; the client answers, which keeps the connection
            await flavour.sleep(0.05)
            assert await client.kv_count() == 0
            assert client.is_connected()
            server.advance(25)  # silent past the timeout in one step: dropped
            await flavour.noticed_drop(client)
            with pytest.raises(ConnectionLostError):
                await client.kv_count()
            await client.close()

        flavour.run(main)


def test_advance_refuses_going_back() -> None:
    with MemoryServer() as server, pytest.raises(ValueError, match="seconds"):
        server.advance(-1)


def test_one_memory_server_serves_many_threads() -> None:
    with MemoryServer() as server:

        def work(n: int) -> None:
            with ndb_sync.NdbClient(timeout=5) as client:
                assert client.open(server.url)
                for i in range(50):
                    client.kv_set({f"k{n}-{i}": i})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        with ndb_sync.NdbClient(timeout=5) as client:
            assert client.open(server.url)
            assert client.kv_count() == 200


def test_memory_server_names_are_unique() -> None:
    with MemoryServer(name="twin"), pytest.raises(ValueError, match="twin"):
        MemoryServer(name="twin")


# -- faults on cue, on both servers ----------------------------------------------------------


def test_drop_connections_now(flavour: Flavour, server: FaultControls) -> None:
    async def main() -> None:
        client = flavour.client(**NO_RECONNECT)
        assert await client.open(server.url) is True  # type: ignore[attr-defined]
        server.drop_connections()
        await flavour.noticed_drop(client)
        with pytest.raises(ConnectionLostError):
            await client.kv_count()
        await client.close()

    flavour.run(main)


def test_drop_connections_after_n_replies(flavour: Flavour, server: FaultControls) -> None:
    async def main() -> None:
        client = flavour.client(**NO_RECONNECT)
        assert await client.open(server.url) is True  # type: ignore[attr-defined]
        server.drop_connections(after_replies=2)
        await client.kv_set({"a": 1})
        await client.kv_set({"b": 2})  # the second reply arrives, then the connection drops
        await flavour.noticed_drop(client)
        with pytest.raises(ConnectionLostError):
            await client.kv_set({"c": 3})
        await client.close()
        async with flavour.connected(server.url) as again:  # type: ignore[attr-defined]
            assert sorted(await again.kv_keys()) == ["a", "b"]

    flavour.run(main)


def test_drop_next_reply_then_answer_next(flavour: Flavour, server: FaultControls) -> None:
    async def main() -> None:
        async with flavour.connected(server.url, timeout=0.3) as client:  # type: ignore[attr-defined]
            server.drop_next_reply()
            with pytest.raises(NdbTimeoutError):
                await client.kv_set({"a": 1})  # it ran; its reply never came
            server.answer_next('{"KV_COUNT_RSP":')
            with pytest.raises(ConnectionLostError) as info:
                await client.kv_count()  # a broken reply ends the connection
            assert isinstance(info.value.__cause__, RemoteProtocolError)

        async with flavour.connected(server.url) as client:  # type: ignore[attr-defined]
            assert await client.kv_get(key="a") == 1

    flavour.run(main)


def test_stall_and_resume(flavour: Flavour, server: FaultControls) -> None:
    async def main() -> None:
        async with flavour.connected(server.url, timeout=0.3) as client:  # type: ignore[attr-defined]
            server.stall()
            with pytest.raises(NdbTimeoutError):
                await client.kv_set({"a": 1})
        server.resume()
        async with flavour.connected(server.url) as client:  # type: ignore[attr-defined]
            assert await client.kv_count() == 1  # the stalled command ran on resume

    flavour.run(main)


def test_a_stalled_server_completes_no_new_handshake_until_resumed(server: FaultControls) -> None:
    """A connection made while the server is stalled is not read (its handshake waits), on
    every Python: then resume answers it and what it sends, in order."""
    server.stall()
    client = ndb_sync.NdbClient(timeout=10)
    opened: list[bool] = []
    opener = threading.Thread(target=lambda: opened.append(client.open(server.url)))  # type: ignore[attr-defined]
    try:
        opener.start()
        opener.join(0.3)
        assert opener.is_alive() and not client.is_connected()
        server.resume()
        opener.join(10)
        assert opened == [True]
        assert client.kv_count() == 0
    finally:
        client.close()
        opener.join(10)


@pytest.mark.parametrize("keep_data", [True, False])
def test_restart(flavour: Flavour, server: FaultControls, keep_data: bool) -> None:
    async def main() -> None:
        async with flavour.connected(server.url, **NO_RECONNECT) as client:  # type: ignore[attr-defined]
            await client.kv_set({"a": 1})
            server.restart(keep_data=keep_data)
            await flavour.noticed_drop(client)
            with pytest.raises(ConnectionLostError):
                await client.kv_count()
        async with flavour.connected(server.url) as client:  # type: ignore[attr-defined]
            assert await client.kv_count() == (1 if keep_data else 0)

    flavour.run(main)


def run_with_random_faults(server: FaultControls, seed: int) -> list[str]:
    """40 commands, one at a time; after a lost connection the next command goes on a new one.

    Each command reaches the server exactly once whatever the machine's load: a command is
    written before its timeout starts, and no command waits for a reconnection in the
    background (where a slow moment could time it out unsent, and its fault never be drawn)."""
    server.random_faults(seed, rate=0.2, kinds=("drop reply", "answer"))
    client = ndb_sync.NdbClient(timeout=0.2, auto_reconnect=False)
    try:
        for i in range(40):
            if not client.is_connected():
                client.close()
                client = ndb_sync.NdbClient(timeout=0.2, auto_reconnect=False)
                assert client.open(server.url)  # type: ignore[attr-defined]
            with contextlib.suppress(ConnectionLostError, NdbTimeoutError):
                client.kv_set({f"k{i}": i})
    finally:
        client.close()
    return list(server.faults.log)


def test_a_seed_replays_the_same_faults(server: FaultControls) -> None:
    first = run_with_random_faults(server, seed=7)
    other = MemoryServer() if isinstance(server, MemoryServer) else ServerThread().__enter__()
    try:
        assert run_with_random_faults(other, seed=7) == first
    finally:
        other.close() if isinstance(other, MemoryServer) else other.stop()
    assert first, "a rate of 0.2 over 40 commands gives some faults"


def test_a_command_that_never_arrives_changes_no_other_fault() -> None:
    """Every third command is taken out (as if written to a connection that had just dropped):
    each remaining command still gets the fault it got in the full run."""

    def faults(messages: list[str]) -> dict[str, tuple[str | None, bool]]:
        plan = FaultPlan()
        plan.randomly(3, rate=0.3, kinds=RANDOM_FAULTS)
        return {m: (plan.reply(lambda text: "ran", m), plan.take_drop()) for m in messages}

    messages = [f'{{"KV_SET":{{"keys":{{"k{i}":{i}}}}}}}' for i in range(60)]
    full = faults(messages)
    fewer = faults([m for i, m in enumerate(messages) if i % 3])
    assert fewer == {m: full[m] for m in fewer}
    assert {answer for answer, _ in full.values()} > {"ran", None}  # every kind happened
    assert any(dropped for _, dropped in full.values())


def run_through_drops(
    server: MemoryServer | ServerThread, reconnect_at_once: bool
) -> tuple[list[str], set[str]]:
    """40 commands under random faults, dropped connections among them; each command's outcome.
    With ``reconnect_at_once`` the client reconnects as soon as the server has dropped it, so
    no command is written to a dead connection."""
    # No dropped replies: their timeouts would make a slow moment look like a fault.
    server.random_faults(11, rate=0.15, kinds=("answer", "drop connections"))
    outcomes = []
    with ndb_sync.NdbClient(timeout=5, backoff=Backoff(initial=0.001, maximum=0.01)) as client:
        assert client.open(server.url)
        for i in range(40):
            try:
                client.kv_set({f"k{i}": i})
                outcomes.append("ok")
            except NdbTimeoutError:
                outcomes.append("timed out")
            except ConnectionLostError:
                outcomes.append("lost")
            if reconnect_at_once and server.faults.log.count("dropped connections") > sum(
                o == "reconnected" for o in outcomes
            ):
                client.reconnect()
                outcomes.append("reconnected")
    server.random_faults(0, rate=0.0)  # no more faults: read what ran
    with ndb_sync.NdbClient(timeout=5) as probe:
        assert probe.open(server.url)
        ran = set(probe.kv_keys())
    return [o for o in outcomes if o != "reconnected"], ran


def test_random_faults_replay_exactly_through_dropped_connections(server: FaultControls) -> None:
    """Whether the client writes a command to a connection that has just dropped (it never
    reaches the server) or waits for its reconnection, every command that reached the server
    gets the same fault."""
    assert isinstance(server, (MemoryServer, ServerThread))
    waited, ran_waited = run_through_drops(server, reconnect_at_once=True)
    other = MemoryServer() if isinstance(server, MemoryServer) else ServerThread().__enter__()
    try:
        hurried, ran_hurried = run_through_drops(other, reconnect_at_once=False)
    finally:
        other.close() if isinstance(other, MemoryServer) else other.stop()
    assert "dropped connections" in server.faults.log
    both = [i for i in range(40) if f"k{i}" in ran_waited & ran_hurried]
    assert [waited[i] for i in both] == [hurried[i] for i in both]


def test_fault_arguments_are_checked(server: FaultControls) -> None:
    with pytest.raises(ValueError, match="after_replies"):
        server.drop_connections(after_replies=-1)
    with pytest.raises(ValueError, match="after_replies"):
        server.drop_connections(after_replies=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate"):
        server.random_faults(1, rate=2.0)
    with pytest.raises(TypeError, match="text"):
        server.answer_next(b"{}")  # type: ignore[arg-type]


def test_memory_server_drops_replies_past_the_backpressure_limit() -> None:
    """Replies the client has not read count as backpressure: past the limit they are dropped
    (the commands still run), and once the client has read, replies flow again."""

    def texts(ws: WSConnection, stream: _memory.MemoryStream) -> list[str]:
        while (data := stream.read(1 << 20)) is not None and data:
            ws.receive_data(data)
        return [event.data for event in ws.events() if isinstance(event, TextMessage)]  # type: ignore[misc]

    with MemoryServer(max_payload=8192, backpressure_limit=64 * 1024) as server:
        ws = WSConnection(ConnectionType.CLIENT)
        stream = _memory.connect(parse_uri(server.url))
        stream.write(ws.send(Request(host="db", target="/")))
        ws.receive_data(stream.read(65536))
        assert any(isinstance(event, AcceptConnection) for event in ws.events())
        stream.write(ws.send(TextMessage('{"KV_SET":{"keys":{"big":"' + "x" * 8000 + '"}}}')))
        assert len(texts(ws, stream)) == 1
        for _ in range(20):  # 20 replies of 8 KB, none read meanwhile
            stream.write(ws.send(TextMessage('{"KV_GET":{"keys":["big"]}}')))
        assert 0 < len(texts(ws, stream)) < 20
        stream.write(ws.send(TextMessage('{"KV_COUNT":{}}')))
        replies = texts(ws, stream)
        assert len(replies) == 1 and '"cnt":1' in replies[0]


def test_a_pipeline_over_a_memory_url(flavour: Flavour) -> None:
    """Pipelines write every command at once; the memory server answers them all in order."""
    with MemoryServer() as server:

        async def main() -> None:
            async with flavour.connected(server.url) as client:
                pipe = pipeline(flavour, client)
                pipe.kv_set({"a": 1}).kv_get(key="a").kv_count()
                assert await execute(flavour, pipe) == [None, 1, 1]

        flavour.run(main)
