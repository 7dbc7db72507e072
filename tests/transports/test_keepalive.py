"""Keepalive: idle clients answer the server's pings (NemesisDB drops a connection that stays
silent; here after 1 s instead of 180 s), and the client's own pings detect a dead peer."""

from __future__ import annotations

from typing import Any

import pytest

import ndb_transports.sync
from tests.transports.flavours import Flavour
from tests.transports.proxy import C2S, OP_PING, OP_PONG, S2C, Proxy
from tests.transports.test_faults import given_up_by_its_ping_then_reconnects

IDLE = {"idle_ping": 0.3, "idle_timeout": 1.0}


@pytest.fixture
def idle_proxy(ndb_server_factory: Any, proxy_factory: Any) -> Proxy:
    """A proxy in front of a server that pings after 0.3 s of silence and drops at 1 s."""
    server = ndb_server_factory(**IDLE)
    proxy: Proxy = proxy_factory(server.url)
    return proxy


def test_server_drops_a_silent_connection(idle_proxy: Proxy) -> None:
    """The premise: a peer that does not answer pings is dropped (a raw socket, no client)."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", idle_proxy.port)) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.settimeout(5.0)
        started = time.monotonic()
        while sock.recv(4096):
            pass
        assert time.monotonic() - started >= 0.9
    assert idle_proxy.frames_of(S2C, OP_PING)


def test_idle_client_answers_server_pings(
    flavour: Flavour, idle_proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    if flavour.is_sync:
        # The blocking client reads an idle socket from its keepalive thread every 30 s (well
        # inside NemesisDB's 164 s); shorten that to match this server's 0.3 s ping.
        monkeypatch.setattr(ndb_transports.sync, "KEEPALIVE_CHECK", 0.1)

    async def main() -> None:
        async with flavour.connected(idle_proxy.url) as c:
            await c.kv_set({"a": 1})
            await flavour.sleep(1.6)
            assert c.is_connected()
            assert await c.kv_get(key="a") == 1
            assert len(idle_proxy.accepted) == 1  # the same connection all along
            assert idle_proxy.frames_of(S2C, OP_PING)
            assert idle_proxy.frames_of(C2S, OP_PONG)
            assert not idle_proxy.frames_of(C2S, OP_PING)  # no pings of its own by default

    flavour.run(main)


def test_sync_client_pings_with_ping_interval(idle_proxy: Proxy) -> None:
    """The blocking client's ping_interval also shortens its keepalive checks."""
    flavour = Flavour("sync")

    async def main() -> None:
        async with flavour.connected(idle_proxy.url, ping_interval=0.2) as c:
            await flavour.sleep(1.6)
            assert c.is_connected()
            assert await c.kv_count() == 0
            assert len(idle_proxy.accepted) == 1
            assert len(idle_proxy.frames_of(C2S, OP_PING)) >= 2
            assert idle_proxy.frames_of(S2C, OP_PONG)

    flavour.run(main)


def test_ping_interval_keeps_a_healthy_connection(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url, ping_interval=0.1, ping_timeout=0.3) as c:
            await flavour.sleep(0.8)
            assert c.is_connected()
            assert await c.kv_count() == 0
            assert len(proxy.accepted) == 1
            pings = proxy.frames_of(C2S, OP_PING)
            pongs = proxy.frames_of(S2C, OP_PONG)
            assert len(pings) >= 3
            assert {p.payload for p in pongs} <= {p.payload for p in pings}

    flavour.run(main)


def test_ping_timeout_detects_a_stalled_connection(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url, ping_interval=0.2, ping_timeout=0.3) as c:
            await given_up_by_its_ping_then_reconnects(flavour, c, proxy)
            stalled = proxy.frames_of(C2S)[0].conn
            assert any(ping.conn == stalled for ping in proxy.frames_of(C2S, OP_PING))
            assert len(proxy.accepted) == 2

    flavour.run(main)
