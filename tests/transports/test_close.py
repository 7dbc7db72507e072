"""close(), close_and_wait(), wait_closed(), context managers and is_connected(), in every
flavour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ndb_proto.errors import ClientClosedError, NdbTimeoutError
from ndb_server.memory import MemoryServer
from ndb_server.thread import ServerThread
from tests.transports.flavours import Flavour
from tests.transports.proxy import C2S, OP_CLOSE, S2C, Proxy


def server_connections(server: ServerThread | MemoryServer) -> int:
    return server.connection_count


@pytest.mark.parametrize("timeout", [30.0, None])
def test_close_fails_pending_requests_at_once(
    flavour: Flavour, proxy: Proxy, timeout: float | None
) -> None:
    """Written and queued requests fail with ClientClosedError as soon as close() starts, long
    before their own timeout (if any), even though the server never answers."""

    async def main() -> None:
        c = flavour.client(timeout=timeout, close_timeout=2.0, max_in_flight=2)
        assert await c.open(proxy.url)
        proxy.stall()
        async with flavour.group() as group:
            try:
                pending = [group.start(c.kv_set, {f"k{n}": n}) for n in range(4)]
                await flavour.until(lambda: len(proxy.texts(C2S)) == 2)
                await flavour.sleep(0.05)
                closing = group.start(c.close)
                await flavour.until(lambda: all(o.done for o in pending), timeout=1.5)
                await flavour.until(lambda: closing.done, timeout=3.0)  # close_timeout
            finally:
                proxy.resume()  # (so that a failure does not leave threads blocked)
        assert closing.unwrap() is None
        errors = [o.error for o in pending]
        assert all(isinstance(e, ClientClosedError) for e in errors), errors
        assert sorted(e.outcome_unknown for e in errors) == [False, False, True, True]
        assert not c.is_connected()

    flavour.run(main)


def test_close_sends_a_close_frame_and_waits(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        c = flavour.client()
        assert await c.open(proxy.url)
        assert c.is_connected()
        await c.close()
        assert not c.is_connected()
        assert proxy.frames_of(C2S, OP_CLOSE), "no close frame sent"
        # close() waited for the server's answer to it.
        assert proxy.frames_of(S2C, OP_CLOSE), "returned before the close handshake ended"
        await c.close()  # again: nothing to do
        await c.wait_closed()
        with pytest.raises(ClientClosedError) as info:
            await c.kv_count()
        assert info.value.outcome_unknown is False

    flavour.run(main)


@pytest.mark.parametrize("how", ["close", "close_and_wait", "context"])
def test_ways_to_close(flavour: Flavour, ndb_server: ServerThread, how: str) -> None:
    async def main() -> None:
        c = flavour.client()
        if how == "context":
            async with c as entered:
                assert entered is c
                assert await c.open(ndb_server.url)
                await c.kv_set({"a": 1})
                assert server_connections(ndb_server) == 1
        else:
            assert await c.open(ndb_server.url)
            await c.kv_set({"a": 1})
            await getattr(c, how)()
        assert not c.is_connected()
        await c.wait_closed()
        await flavour.until(lambda: server_connections(ndb_server) == 0)
        with pytest.raises(ClientClosedError):
            await c.kv_get(key="a")
        # A closed client can be opened again.
        assert await c.open(ndb_server.url)
        assert await c.kv_get(key="a") == 1
        await c.close()

    flavour.run(main)


def test_context_manager_closes_on_error(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        c = flavour.client()

        async def use() -> None:
            async with c:
                assert await c.open(ndb_server.url)
                raise KeyError("boom")

        with pytest.raises(KeyError):
            await use()
        assert not c.is_connected()
        await flavour.until(lambda: server_connections(ndb_server) == 0)

    flavour.run(main)


def test_close_of_a_client_never_opened(flavour: Flavour) -> None:
    async def main() -> None:
        c = flavour.client()
        await c.close()
        await c.close_and_wait()
        await c.wait_closed()
        async with c:
            pass
        assert not c.is_connected()

    flavour.run(main)


def test_close_while_reconnecting(flavour: Flavour, proxy: Proxy) -> None:
    """Requests waiting for a reconnect (never written) fail with ClientClosedError, outcome
    known, as soon as the client is closed."""

    async def main() -> None:
        c = flavour.client(timeout=30.0)
        assert await c.open(proxy.url)
        proxy.mode = "refuse"
        proxy.kill()
        await flavour.noticed_drop(c)
        async with flavour.group() as group:
            waiting = [group.start(c.kv_count) for _ in range(3)]
            try:
                await flavour.sleep(0.2)
                assert not any(o.done for o in waiting)
            finally:
                await c.close()
            await flavour.until(lambda: all(o.done for o in waiting), timeout=2.0)
        for outcome in waiting:
            assert isinstance(outcome.error, ClientClosedError), outcome
            assert outcome.error.outcome_unknown is False

    flavour.run(main)


def test_is_connected_follows_the_connection(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        c = flavour.client()
        assert not c.is_connected()
        assert await c.open(proxy.url)
        assert c.is_connected()
        proxy.mode = "refuse"
        proxy.kill()
        await flavour.noticed_drop(c)
        if flavour.is_sync:
            # The blocking client learns of the loss when it next touches the socket; the
            # request then waits for a reconnect, which is refused.
            with pytest.raises(NdbTimeoutError) as info:
                await c.kv_count(timeout=0.3)
            assert info.value.outcome_unknown is False
        await flavour.until(lambda: not c.is_connected())
        assert not c.is_websocket()
        proxy.mode = "forward"
        assert await c.kv_count() == 0
        assert c.is_connected()
        await c.close()
        assert not c.is_connected()

    flavour.run(main)


def test_async_close_starts_without_await(ndb_server: ServerThread) -> None:
    """asyncio/trio: close() starts closing at once; awaiting it only waits for the end."""
    for name in ("asyncio", "trio"):
        flavour = Flavour(name)

        async def main(flavour: Flavour = flavour) -> None:
            c = flavour.client()
            assert await c.open(ndb_server.url)
            closing: Any = c.close()
            assert not c.is_connected()
            with pytest.raises(ClientClosedError):
                await c.kv_count()
            await closing
            await c.wait_closed()

        flavour.run(main)


def test_asyncio_get_event_loop(ndb_server: ServerThread) -> None:
    import asyncio

    flavour = Flavour("asyncio")

    async def main() -> None:
        c = flavour.client()
        assert await c.open(ndb_server.url)
        assert c.get_event_loop() is asyncio.get_running_loop()
        await c.close()

    flavour.run(main)


def unix_sockets() -> set[int]:
    """The open file descriptors of this process that are AF_UNIX sockets."""
    import os
    import socket

    found = set()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.family == socket.AF_UNIX:
                    found.add(fd)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_sync_close_releases_its_sockets(proxy: Proxy) -> None:
    import time

    import ndb_transports.sync as ndb_sync
    from ndb_proto.reconnect import Backoff

    before = unix_sockets()
    client = ndb_sync.NdbClient(timeout=0.3, backoff=Backoff(initial=0.02, maximum=0.1))
    assert client.open(proxy.url)
    proxy.mode = "refuse"
    proxy.kill()
    time.sleep(0.1)
    with pytest.raises(NdbTimeoutError):
        client.kv_count()  # sees the drop; the reconnects are refused
    assert not client.is_connected()
    client.close()
    leaked = unix_sockets() - before
    assert leaked == set(), "socket pair left open by close()"
