"""Run an `NdbServer` on a background thread with its own event loop.

This is how tests and the quick start embed a server whatever their own concurrency model is:
asyncio, trio or plain threads can all talk to it over loopback.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from ndb_server.faults import FaultControls, FaultPlan
from ndb_server.server import NdbServer


class ServerThread(FaultControls):
    """``with ServerThread(port=0) as server: server.url`` (keyword arguments go to NdbServer).

    The faults of `FaultControls` act on the server's loop, as on `ndb_server.MemoryServer`."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("port", 0)
        self._options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: NdbServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def server(self) -> NdbServer:
        assert self._server is not None, "not started"
        return self._server

    @property
    def url(self) -> str:
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
        self._thread = threading.Thread(target=self._run, name="ndb-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
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
            self._server = NdbServer(**self._options)
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
