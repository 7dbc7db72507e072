"""The embedded NemesisDB-compatible server on asyncio.

One `Engine` serves every connection (NemesisDB's store and sessions are global), on one event
loop, so each command is atomic as on the real single-threaded server. Replies are written in
request order. Like uWebSockets with NemesisDB's settings, a connection whose unread output
exceeds ``backpressure_limit`` (128 KiB) silently loses further replies until it drains.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from types import TracebackType

from ndb_server._keywords import NdbServerKeywords
from ndb_server._timeline import Timeline
from ndb_server.connection import Outcome, ServerConnection
from ndb_server.engine import Engine
from ndb_server.faults import FaultPlan
from ndb_server.options import BACKPRESSURE_LIMIT, SWEEP_INTERVAL, ServerOptions, check_address
from ndb_transports.clock import time_source

__all__ = [
    "BACKPRESSURE_LIMIT",
    "MAX_PAYLOAD_RANGE",
    "SWEEP_INTERVAL",
    "NdbServer",
    "check_options",
]

MAX_PAYLOAD_RANGE = range(64, 8193)
FOLLOW_POLL = 0.05
STOP_GRACE = 1.0
"""Seconds a stopping server gives its connections to flush their close frames; a connection
still open then (its client does not read) is cut off, so no socket outlives the server."""
"""Real seconds between looks at a followed clock. A `VirtualClock` also calls the server as it
moves; the looks are for the clocks that cannot (trio's ``MockClock``, a plain function)."""


def check_options(max_payload: int, persist_dir: str | os.PathLike[str] | None) -> None:
    """The checks of two options (kept for callers of this function; servers check every option
    through `ndb_server.options.ServerOptions`)."""
    ServerOptions(max_payload=max_payload, persist_dir=persist_dir)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Connection(asyncio.Protocol):
    def __init__(self, server: NdbServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.conn: ServerConnection | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.held: list[bytes] = []  # read while stalled, kept for `resume`

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
        if server.stopping:  # accepted just before the listening socket closed
            self.shutdown()
            return
        if server.stalled:
            transport.pause_reading()
        if server.timeline is None:
            self._arm()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        assert conn is not None
        if self.server.stalled:
            # Read although reading was paused: Python 3.10 starts reading a new connection
            # after connection_made even when it paused it there. Keep the bytes for `resume`,
            # and pause for real (resume first: 3.10 believes it is paused already).
            self.held.append(data)
            transport = self.transport
            assert transport is not None
            transport.resume_reading()
            transport.pause_reading()
            return
        self.server.catch_up()
        conn.receive_data(data, self.server.loop_time())
        self._flush()

    def eof_received(self) -> bool:
        conn = self.conn
        assert conn is not None
        self.server.catch_up()
        conn.receive_data(b"", self.server.loop_time())
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.connections.discard(self)
        if not server.connections and server._all_closed is not None:
            _resolve(server._all_closed)
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

    def time_passed(self, now: float) -> None:
        """A followed clock reached this connection's deadline (see `Timeline`)."""
        conn = self.conn
        assert conn is not None
        conn.handle_timeout(now)
        self._flush()

    def shutdown(self) -> None:
        conn = self.conn
        if conn is not None:
            conn.shutdown()
            self._flush()


class NdbServer(NdbServerKeywords):
    """An in-process NemesisDB 0.7.4-compatible server.

    ``port=0`` picks a free port; `url` tells which. The options are declared once in
    `ndb_server.options.ServerOptions` (the same for every embedded server): ``persist_dir``
    enables KV_SAVE/SH_SAVE; ``idle_ping`` and ``idle_timeout`` default to NemesisDB's 164 s and
    180 s and can be shortened for tests; with a ``clock``, the server's time (session expiry, the
    sweep, the idle ping and drop) follows that clock instead of its event loop's.
    """

    def _configure(self, host: str, port: int, options: ServerOptions) -> None:
        check_address(host, port)
        self.options = options
        self.host = host
        self.port = port
        self._clock: Callable[[], float] = time_source(options.clock)
        self.engine = Engine(clock=self._clock, persist_dir=self.persist_dir)
        self.faults = FaultPlan()
        self.stalled = False
        self.stopping = False
        self._all_closed: asyncio.Future[None] | None = None
        """Resolved by the last connection to end while the server stops."""
        self.connections: set[_Connection] = set()
        self.timeline: Timeline | None = None
        """Where the followed clock's timed work stands (None: real time, on loop timers)."""
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
                    held, connection.held = connection.held, []
                    for data in held:
                        connection.data_received(data)

    def restart(self, keep_data: bool) -> None:
        self.drop_all()
        if not keep_data:
            self.engine = Engine(clock=self._clock, persist_dir=self.persist_dir)

    def loop_time(self) -> float:
        """The server's time: its event loop's, or the followed clock's."""
        if self.timeline is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    # -- following a clock (run on the server's loop) ----------------------------------------
    def catch_up(self) -> None:
        """Run the sweeps and idle pings and drops that fell due on the followed clock."""
        timeline = self.timeline
        if timeline is not None:
            timeline.run_until(
                self._clock(),
                self.engine.sweep_expired,
                lambda: () if self.stalled else list(self.connections),
            )

    def next_due(self) -> float | None:
        """When the next idle ping or drop falls due on the followed clock (None: none)."""
        if self.timeline is None or self.stalled:
            return None
        return Timeline.next_deadline(self.connections)

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
        self.stopping, self._all_closed = False, None
        if self.clock is not None:
            self.timeline = Timeline(self._clock(), self.sweep_interval)
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, reuse_address=True
        )
        self._sweeper = loop.call_later(self._timer_step(), self._sweep)

    def _timer_step(self) -> float:
        return self.sweep_interval if self.timeline is None else FOLLOW_POLL

    def _sweep(self) -> None:
        if self.timeline is None:
            self.engine.sweep_expired()
        else:
            self.catch_up()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(self._timer_step(), self._sweep)

    async def stop(self) -> None:
        """Stop listening and close every connection with close code 1000."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping = True
        server.close()
        for connection in list(self.connections):
            connection.shutdown()
        # Connections accepted just before the close get `connection_made` within a few loop
        # turns (and are shut there); the shut ones end once their close frame is flushed.
        for _ in range(3):
            await asyncio.sleep(0)
        if self.connections:
            loop = asyncio.get_running_loop()
            self._all_closed = all_closed = loop.create_future()
            timer = loop.call_later(STOP_GRACE, _resolve, all_closed)
            await all_closed
            timer.cancel()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.sleep(0)  # their `connection_lost`, which closes the sockets
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
