"""A pytest plugin (registered through the ``pytest11`` entry point) with server fixtures.

``ndb_server``: a fresh embedded NemesisDB-compatible server for one test, in-process on a free
loopback port; use ``ndb_server.url``. Its store and sessions start empty. It runs on its own
thread, so asyncio, trio and blocking clients can all use it.

``ndb_server_factory``: start servers with options, e.g.
``ndb_server_factory(max_payload=8192, persist_dir=tmp_path)``; all are stopped after the test.

``ndb_memory_server``: the same server with no socket (`ndb_server.MemoryServer`): its
``memory://`` url works with every client flavour, its clock moves only when the test calls
``advance(seconds)``, and both kinds share the fault API (``drop_connections``, ``stall``, ...).
``ndb_memory_server_factory`` starts them with options, like ``ndb_server_factory``.

``ndb_clock``: the clock the servers of these fixtures follow, None here (real time, and a
memory server's own clock). Override it (a fixture of the same name in a conftest or test
module) to return a `ndb_server.VirtualClock` or trio's ``MockClock``, and every server
started by these fixtures follows it unless given another ``clock=``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from ndb_server.memory import MemoryServer
from ndb_server.thread import ServerThread


@pytest.fixture
def ndb_clock() -> Any:
    """The clock the fixtures' servers follow: None (real time). Override it to share one clock
    between a test's servers and clients (see docs/testing.md)."""
    return None


_Server = TypeVar("_Server", ServerThread, MemoryServer)


def _factory(
    start: Callable[..., _Server], end: Callable[[_Server], None], clock: Any
) -> Iterator[Callable[..., _Server]]:
    """The body of both factory fixtures: ``start(**options)``, with ``clock`` defaulting to
    ``clock``, makes a running server; after the test each one made is ended, in the order
    they were made. A server whose start raised is not kept, and so not ended."""
    started: list[_Server] = []

    def make(**options: Any) -> _Server:
        options.setdefault("clock", clock)
        server = start(**options)
        started.append(server)
        return server

    yield make
    for server in started:
        end(server)


def _started_thread(**options: Any) -> ServerThread:
    server = ServerThread(**options)
    server.start()
    return server


@pytest.fixture
def ndb_server_factory(ndb_clock: Any) -> Iterator[Callable[..., ServerThread]]:
    """Start socket servers with options (``ServerThread``'s keywords); each is stopped after
    the test. They follow ``ndb_clock`` unless given a ``clock``."""
    yield from _factory(_started_thread, ServerThread.stop, ndb_clock)


@pytest.fixture
def ndb_server(ndb_server_factory: Callable[..., ServerThread]) -> ServerThread:
    """A fresh socket server on a free loopback port, stopped after the test; use its ``url``."""
    return ndb_server_factory()


@pytest.fixture
def ndb_memory_server_factory(ndb_clock: Any) -> Iterator[Callable[..., MemoryServer]]:
    """Start memory servers with options (``MemoryServer``'s keywords); each is closed after the
    test. They follow ``ndb_clock`` unless given a ``clock``."""
    yield from _factory(MemoryServer, MemoryServer.close, ndb_clock)


@pytest.fixture
def ndb_memory_server(
    ndb_memory_server_factory: Callable[..., MemoryServer],
) -> MemoryServer:
    """A fresh memory server (``memory://`` url, no socket), closed after the test."""
    return ndb_memory_server_factory()
