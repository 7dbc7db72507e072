"""The embedded NemesisDB-compatible server on asyncio.

One `Engine` serves every connection (NemesisDB's store and sessions are global), on one event
loop, so each command is atomic as on the real single-threaded server. Replies are written in
request order. Like uWebSockets with NemesisDB's settings, a connection whose unread output
exceeds ``backpressure_limit`` (128 KiB) silently loses further replies until it drains.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from types import TracebackType

from ndb_server.connection import Outcome, ServerConnection
from ndb_server.engine import Engine
from ndb_server.faults import FaultPlan

MAX_PAYLOAD_RANGE = range(64, 8193)
BACKPRESSURE_LIMIT = 128 * 1024
SWEEP_INTERVAL = 5.0


def check_options(max_payload: int, persist_dir: str | os.PathLike[str] | None) -> None:
    """The options every kind of embedded server checks before it starts."""
    if max_payload not in MAX_PAYLOAD_RANGE:
        raise ValueError(f"max_payload must be in 64..8192, got {max_payload}")
    if persist_dir is not None and not os.path.isdir(persist_dir):
        raise ValueError(f"persist_dir {os.fspath(persist_dir)!r} is not a directory")


class _Connection(asyncio.Protocol):
    def __init__(self, server: NdbServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.conn: ServerConnection | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        server = self.server
        self.transport = transport
        self.conn = ServerConnection(
            server.handle_text,
            server.handle_binary,
            max_payload=server.max_payload,
            now=server.loop_time(),
            idle_ping=server.idle_ping,
            idle_timeout=server.idle_timeout,
            backpressure_limit=server.backpressure_limit,
            unsent=transport.get_write_buffer_size,
        )
        server.connections.add(self)
        if server.stalled:
            transport.pause_reading()
        self._arm()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        assert conn is not None
        conn.receive_data(data, self.server.loop_time())
        self._flush()

    def eof_received(self) -> bool:
        conn = self.conn
        assert conn is not None
        conn.receive_data(b"", self.server.loop_time())
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()

    def _flush(self) -> None:
        conn, transport = self.conn, self.transport
        assert conn is not None and transport is not None
        if conn.outcome is Outcome.DROP:
            transport.abort()
            return
        data = conn.data_to_send()
        if data:
            transport.write(data)
        if conn.outcome is Outcome.CLOSE:
            transport.close()
        if self.server.faults.take_drop():
            self.server.drop_all()

    def _arm(self) -> None:
        conn = self.conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        self.timer = loop.call_at(conn.next_deadline(), self._on_timer)

    def _on_timer(self) -> None:
        conn = self.conn
        assert conn is not None
        conn.handle_timeout(self.server.loop_time())
        self._flush()
        if conn.outcome is Outcome.KEEP:
            self._arm()

    def shutdown(self) -> None:
        conn = self.conn
        if conn is not None:
            conn.shutdown()
            self._flush()


class NdbServer:
    """An in-process NemesisDB 0.7.4-compatible server.

    ``port=0`` picks a free port; `url` tells which. ``persist_dir`` enables KV_SAVE/SH_SAVE
    (None: persistence disabled, as in NemesisDB's default config). ``idle_ping`` and
    ``idle_timeout`` default to NemesisDB's 164 s and 180 s and can be shortened for tests.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1987,
        *,
        max_payload: int = 1024,
        persist_dir: str | os.PathLike[str] | None = None,
        idle_ping: float = 164.0,
        idle_timeout: float = 180.0,
        sweep_interval: float = SWEEP_INTERVAL,
        backpressure_limit: int = BACKPRESSURE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_options(max_payload, persist_dir)
        self.host = host
        self.port = port
        self.max_payload = max_payload
        self.idle_ping = idle_ping
        self.idle_timeout = idle_timeout
        self.sweep_interval = sweep_interval
        self.backpressure_limit = backpressure_limit
        self._clock = clock
        self.persist_dir = persist_dir
        self.engine = Engine(clock=clock, persist_dir=persist_dir)
        self.faults = FaultPlan()
        self.stalled = False
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def handle_text(self, text: str) -> str | None:
        return self.faults.reply(self.engine.handle_text, text)

    def handle_binary(self, data: bytes) -> str | None:
        return self.faults.reply(self.engine.handle_binary, data)

    # -- faults (run on the server's loop; `ServerThread` offers them as `FaultControls`) --------
    def drop_all(self) -> None:
        """End every connection at once, with no close frame."""
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()

    def stall(self, stalled: bool) -> None:
        self.stalled = stalled
        for connection in list(self.connections):
            if connection.transport is not None:
                if stalled:
                    connection.transport.pause_reading()
                else:
                    connection.transport.resume_reading()

    def restart(self, keep_data: bool) -> None:
        self.drop_all()
        if not keep_data:
            self.engine = Engine(clock=self._clock, persist_dir=self.persist_dir)

    @staticmethod
    def loop_time() -> float:
        return asyncio.get_running_loop().time()

    @property
    def url(self) -> str:
        """``ws://host:port/`` of the listening socket (the real port when started with 0)."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{port}/"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, reuse_address=True
        )
        self._sweeper = loop.call_later(self.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        self.engine.sweep_expired()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(self.sweep_interval, self._sweep)

    async def stop(self) -> None:
        """Stop listening and close every connection with close code 1000."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for connection in list(self.connections):
            connection.shutdown()
        await server.wait_closed()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> NdbServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
