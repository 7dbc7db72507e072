"""Run an `NdbServer` on a background thread with its own event loop.

This is how tests and the quick start embed a server whatever their own concurrency model is:
asyncio, trio or plain threads can all talk to it over loopback. Given a `VirtualClock`, the
server's time follows it: as the clock moves, the server runs its sweeps and idle pings and
drops on its own thread before the move returns.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import fields
from types import TracebackType
from typing import Any

from ndb_server._keywords import ServerThreadKeywords
from ndb_server.faults import FaultControls, FaultPlan
from ndb_server.options import ServerOptions, check_address
from ndb_server.server import NdbServer
from ndb_transports.clock import VirtualClock


class ServerThread(ServerThreadKeywords, FaultControls):
    """An `NdbServer` on a thread of its own, for tests of any flavour:
    ``with ServerThread() as server: server.url``.

    It takes the same options as every embedded server (`ndb_server.options.ServerOptions`),
    on a free port unless ``port`` says otherwise. The faults of `FaultControls` act on the
    server's loop, as on `ndb_server.MemoryServer`."""

    def _configure(self, host: str, port: int, options: ServerOptions) -> None:
        check_address(host, port)
        self.options = options
        self.host = host
        self.port = port
        self._follower: _Follower | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: NdbServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def server(self) -> NdbServer:
        """The running `NdbServer` (use it only on its own thread, e.g. through `call`)."""
        if self._server is None:
            raise RuntimeError("the server is not started (use start(), or a with block)")
        return self._server

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/``, the started server's address."""
        return self.server.url

    @property
    def connection_count(self) -> int:
        """How many clients are connected now."""
        return int(self.call(lambda: len(self.server.connections)))

    @property
    def faults(self) -> FaultPlan:  # type: ignore[override]
        return self.server.faults

    def _drop_all(self) -> None:
        self.call(self.server.drop_all)

    def _stall(self, stalled: bool) -> None:
        self.call(self.server.stall, stalled)

    def _restart(self, keep_data: bool) -> None:
        self.call(self.server.restart, keep_data)

    def start(self) -> str:
        """Start the server on its thread and return its URL once it listens; a server that
        cannot start (say, its port is taken) raises its error here."""
        self._thread = threading.Thread(target=self._run, name="ndb-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        clock = self.clock
        if isinstance(clock, VirtualClock):
            self._follower = _Follower(self)
            clock.follow(self._follower)
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        try:
            options = {f.name: getattr(self.options, f.name) for f in fields(self.options)}
            self._server = NdbServer(self.host, self.port, **options)
            await self._server.start()
            self._stop = asyncio.Event()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self._server.stop()

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` on the server's loop thread and return its result."""
        assert self._loop is not None

        async def run() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def stop(self) -> None:
        """Stop the server (its clients get close code 1000) and wait for its thread to end."""
        follower, self._follower = self._follower, None
        if follower is not None and isinstance(self.clock, VirtualClock):
            self.clock.unfollow(follower)
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Follower:
    """What a `VirtualClock` calls as it moves: the server's timed work, on the server's loop."""

    def __init__(self, thread: ServerThread) -> None:
        self._thread = thread

    def next_due(self) -> float | None:
        thread = self._thread
        return thread.call(lambda: thread.server.next_due())  # type: ignore[no-any-return]

    def catch_up(self) -> None:
        thread = self._thread
        thread.call(lambda: thread.server.catch_up())
