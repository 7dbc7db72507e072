"""wss:// through a TLS-terminating proxy with a trustme certificate, in every flavour:
verified certificates and host names, and the ssl option refusing contradictions."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trustme

from ndb_proto.errors import ConnectionLostError
from ndb_server.thread import ServerThread
from tests.transports.conftest import server_context
from tests.transports.flavours import Flavour
from tests.transports.proxy import C2S, Proxy


def test_wss_with_a_trusted_certificate(
    flavour: Flavour, tls_proxy: Proxy, client_ssl_context: ssl.SSLContext
) -> None:
    async def main() -> None:
        for url in (tls_proxy.url, tls_proxy.url_for("localhost")):
            async with flavour.connected(url, ssl=client_ssl_context) as c:
                assert c.is_connected()
                await c.kv_set({"secure": url})
                assert await c.kv_get(key="secure") == url
        # ssl=True: "TLS required, verified" needs a CA the default context trusts; with our
        # own CA only a context works, which is the point of the next tests.
        assert len(tls_proxy.accepted) == 2

    flavour.run(main)


def test_wss_large_replies_and_concurrency(
    flavour: Flavour, tls_proxy: Proxy, client_ssl_context: ssl.SSLContext
) -> None:
    """Replies spanning many TLS records (the blocking client must drain what the TLS layer
    has buffered, not only what select() reports)."""

    async def main() -> None:
        async with flavour.connected(tls_proxy.url, ssl=client_ssl_context) as c:
            for n in range(40):
                await c.kv_set({f"big{n}": chr(97 + n % 26) * 900})
            everything = await c.kv_get([f"big{n}" for n in range(40)])
            assert everything == {f"big{n}": chr(97 + n % 26) * 900 for n in range(40)}
            outcomes = await flavour.gather(
                *[lambda n=n: c.kv_get(key=f"big{n}") for n in range(40)]
            )
            assert [o.unwrap() for o in outcomes] == [chr(97 + n % 26) * 900 for n in range(40)]

    flavour.run(main)


def test_wss_connection_killed_and_reconnected(
    flavour: Flavour, tls_proxy: Proxy, client_ssl_context: ssl.SSLContext
) -> None:
    async def main() -> None:
        async with flavour.connected(tls_proxy.url, ssl=client_ssl_context) as c:
            tls_proxy.stall()
            async with flavour.group() as group:
                pending = group.start(c.kv_set, {"a": 1})
                await flavour.until(lambda: len(tls_proxy.texts(C2S)) == 1)
                tls_proxy.kill()
                tls_proxy.resume()
            assert isinstance(pending.error, ConnectionLostError)
            assert pending.error.outcome_unknown is True
            assert await c.kv_get(key="a") == 1  # over a new TLS connection
            assert len(tls_proxy.accepted) == 2

    flavour.run(main)


@pytest.mark.parametrize("option", [None, True])
def test_untrusted_certificate_fails_to_open(
    flavour: Flavour, tls_proxy: Proxy, option: Any
) -> None:
    """With the default verification (system CAs), the test CA's certificate is refused:
    open() returns False, as for any server it cannot connect to."""

    async def main() -> None:
        client = flavour.client(ssl=option)
        assert await client.open(tls_proxy.url) is False
        assert not client.is_connected()

    flavour.run(main)
    assert tls_proxy.texts(C2S) == []  # nothing went through


def test_wrong_host_name_fails_to_open(
    flavour: Flavour,
    ndb_server: ServerThread,
    ca: trustme.CA,
    client_ssl_context: ssl.SSLContext,
) -> None:
    with Proxy.for_url(ndb_server.url, tls=server_context(ca, "db.example.test")) as proxy:

        async def main() -> None:
            client = flavour.client(ssl=client_ssl_context)
            assert await client.open(proxy.url) is False  # 127.0.0.1 is not db.example.test
            assert not client.is_connected()

        flavour.run(main)
        assert proxy.texts(C2S) == []


def test_plain_server_behind_wss_fails_to_open(
    flavour: Flavour, ndb_server: ServerThread, client_ssl_context: ssl.SSLContext
) -> None:
    url = ndb_server.url.replace("ws://", "wss://")

    async def main() -> None:
        assert await flavour.client(ssl=client_ssl_context).open(url) is False

    flavour.run(main)


def test_contradictory_ssl_options_are_refused(
    flavour: Flavour,
    tls_proxy: Proxy,
    ndb_server: ServerThread,
    client_ssl_context: ssl.SSLContext,
) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="ssl=False"):
            await flavour.client(ssl=False).open(tls_proxy.url)
        with pytest.raises(ValueError, match="wss://"):
            await flavour.client(ssl=True).open(ndb_server.url)
        with pytest.raises(ValueError, match="wss://"):
            await flavour.client(ssl=client_ssl_context).open(ndb_server.url)
        with pytest.raises(ValueError, match="ssl=False"):
            await flavour.client(ssl=False).connect_pool([ndb_server.url, tls_proxy.url])
        # ws:// with ssl=None or False is plain WebSocket.
        for option in (None, False):
            async with flavour.connected(ndb_server.url, ssl=option) as c:
                assert await c.kv_count() == 0

    flavour.run(main)
    assert tls_proxy.accepted == []  # refused before connecting


def test_asyncio_close_closes_the_tls_socket(
    tls_proxy: Proxy, client_ssl_context: ssl.SSLContext
) -> None:
    import asyncio

    flavour = Flavour("asyncio")
    state: dict[str, Any] = {}

    async def main() -> None:
        client = flavour.client(ssl=client_ssl_context, close_timeout=0.3)
        assert await client.open(tls_proxy.url)
        sock = client._socket.transport.get_extra_info("socket")
        assert sock.fileno() >= 0
        tls_proxy.stall()  # an unresponsive server: the close handshake times out
        await client.close()
        state["open after close"] = sock.fileno() != -1

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        # Let the TLS shutdown finish before the loop closes, so this test leaks nothing.
        tls_proxy.resume()
        loop.run_until_complete(asyncio.sleep(0.3))
        loop.close()
    assert not state["open after close"], "close() returned with the TLS socket still open"
