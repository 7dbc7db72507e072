"""Fixtures for the transport tests: the flavour under test, a fault-injecting proxy in front of
the embedded server, and TLS material from trustme."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from ndb_server.memory import MemoryServer
from ndb_server.thread import ServerThread
from tests.transports.flavours import FLAVOUR_NAMES, Flavour
from tests.transports.proxy import Proxy

DEFAULT_TEST_TIMEOUT = 30
"""Seconds any test here may take before pytest-timeout fails it (a hang is a failure)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/transports/" in item.nodeid and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


ON_BOTH_SERVERS = frozenset(
    {"test_api", "test_cancellation", "test_close", "test_concurrency", "test_server_faults"}
)
"""Modules whose tests use only ``ndb_server.url``, ``connection_count`` and the servers' fault
API: those not behind a proxy (which needs a socket) run against the socket server and the
memory server (`MemoryServer`), which must behave the same for them.

What stays socket-only: the proxy tests (bytes no server sends on purpose: half frames, a FIN
between two replies, raw injected frames, refused or silent handshakes), the threads tests of
the blocking client (they watch frames through the proxy), and TLS, which means nothing over a
``memory://`` URL (there is no byte stream to encrypt; `wss://` needs a socket)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    names = set(metafunc.fixturenames)
    if module in ON_BOTH_SERVERS and "ndb_server" in names and not {"proxy", "tls_proxy"} & names:
        metafunc.parametrize("server_kind", ["socket", "memory"], indirect=True)


@pytest.fixture
def server_kind(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "socket")  # type: ignore[no-any-return]


@pytest.fixture
def ndb_server(
    server_kind: str,
    ndb_server_factory: Callable[..., ServerThread],
    ndb_memory_server_factory: Callable[..., MemoryServer],
) -> ServerThread | MemoryServer:
    """The socket server, or in the modules of ON_BOTH_SERVERS each kind in turn."""
    if server_kind == "memory":
        return ndb_memory_server_factory()
    return ndb_server_factory()


@pytest.fixture(params=FLAVOUR_NAMES)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return Flavour(request.param)


@pytest.fixture
def proxy(ndb_server: ServerThread) -> Iterator[Proxy]:
    """A proxy in front of the ``ndb_server`` fixture's server."""
    with Proxy.for_url(ndb_server.url) as proxy:
        yield proxy


@pytest.fixture
def proxy_factory() -> Iterator[Callable[..., Proxy]]:
    started: list[Proxy] = []

    def start(target: tuple[str, int] | str | None, **options: Any) -> Proxy:
        if isinstance(target, str):
            proxy = Proxy.for_url(target, **options)
        else:
            proxy = Proxy(target, **options)
        proxy.start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def client_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test CA (and verifies host names)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture
def tls_proxy(ca: trustme.CA, ndb_server: ServerThread) -> Iterator[Proxy]:
    """TLS (certificate for 127.0.0.1 and localhost) in front of the plaintext server."""
    with Proxy.for_url(ndb_server.url, tls=server_context(ca, "127.0.0.1", "localhost")) as p:
        yield p
