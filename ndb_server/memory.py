"""`MemoryServer`: the embedded server with no socket and its own clock, for fast tests.

It runs the same `Engine` and the same per-connection code (`ServerConnection`) as the socket
server, fed with the bytes a client writes to a ``memory://`` URL (`ndb_transports._memory`), so
a client sees the same bytes, the same closes and drops, and the same replies dropped under
backpressure: here every byte the client has not read yet counts, as if the socket buffers were
empty. Each command runs in the thread of the client that sent it, under one lock, so commands
stay atomic as on the single-threaded real server, and one server serves any number of clients
from any threads and event loops.

Time is virtual: it stands still until `advance` moves it, and then the expiry sweep, session
expiry and the idle ping and drop of each connection happen in the order they fall due.
"""

from __future__ import annotations

import itertools
import os
import threading
from types import TracebackType

from ndb_server.connection import Outcome, ServerConnection
from ndb_server.engine import Engine
from ndb_server.faults import FaultControls, FaultPlan
from ndb_server.server import BACKPRESSURE_LIMIT, SWEEP_INTERVAL, check_options
from ndb_transports import _memory

_names = itertools.count(1)


class _Connection:
    """The server's end of one in-memory connection."""

    def __init__(self, server: MemoryServer, stream: _memory.MemoryStream) -> None:
        self.server = server
        self.stream = stream
        self.held = bytearray()  # received while the server stalls
        self.held_eof = False
        self.ended = False
        self.conn = ServerConnection(
            server._handle_text,
            server._handle_binary,
            max_payload=server.max_payload,
            now=server.now,
            idle_ping=server.idle_ping,
            idle_timeout=server.idle_timeout,
            backpressure_limit=server.backpressure_limit,
            unsent=lambda: stream.unread,
        )

    def receive(self, data: bytes) -> None:
        server = self.server
        with server._lock:
            if self.ended:
                raise BrokenPipeError("the memory server ended the connection")
            if server._stalled:
                self.held += data
                self.held_eof = self.held_eof or not data
                return
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        server = self.server
        self.conn.receive_data(data, server.now)
        self.flush()
        if server.faults.take_drop():
            server._drop_all()

    def flush(self) -> None:
        conn = self.conn
        if conn.outcome is Outcome.DROP:
            self.end()
            return
        data = conn.data_to_send()
        if data:
            self.stream.deliver(data)
        if conn.outcome is Outcome.CLOSE:
            self.end()

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.server._connections.discard(self)
            self.stream.end()

    def unstall(self) -> None:
        held, self.held = bytes(self.held), bytearray()
        eof, self.held_eof = self.held_eof, False
        if held and not self.ended:
            self._feed(held)
        if eof and not self.ended:
            self._feed(b"")


class MemoryServer(FaultControls):
    """An in-process NemesisDB 0.7.4-compatible server reached at ``server.url``
    (``memory://ndb-N/``) by every client flavour, with a virtual clock and faults on cue.

    The options mean what they mean for `ndb_server.server.NdbServer`; ``start_time`` is where
    the virtual clock starts. Use it as a context manager, or call `close` when done.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        max_payload: int = 1024,
        persist_dir: str | os.PathLike[str] | None = None,
        idle_ping: float = 164.0,
        idle_timeout: float = 180.0,
        sweep_interval: float = SWEEP_INTERVAL,
        backpressure_limit: int = BACKPRESSURE_LIMIT,
        start_time: float = 0.0,
    ) -> None:
        check_options(max_payload, persist_dir)
        if sweep_interval <= 0:
            raise ValueError(f"sweep_interval must be > 0, got {sweep_interval!r}")
        self.name = name if name is not None else f"ndb-{next(_names)}"
        self.max_payload = max_payload
        self.persist_dir = persist_dir
        self.idle_ping = idle_ping
        self.idle_timeout = idle_timeout
        self.sweep_interval = sweep_interval
        self.backpressure_limit = backpressure_limit
        self.faults = FaultPlan()
        self._lock = threading.RLock()
        self._now = float(start_time)
        self._next_sweep = self._now + sweep_interval
        self._stalled = False
        self._connections: set[_Connection] = set()
        self.engine = self._new_engine()
        self._open = True
        _memory.register(self.name, self._accept)

    def _new_engine(self) -> Engine:
        return Engine(clock=lambda: self._now, persist_dir=self.persist_dir)

    @property
    def url(self) -> str:
        return f"memory://{self.name}/"

    @property
    def now(self) -> float:
        """The server's virtual time in seconds (``start_time`` plus every `advance`)."""
        return self._now

    @property
    def connection_count(self) -> int:
        """How many clients are connected now."""
        with self._lock:
            return len(self._connections)

    def _accept(self, stream: _memory.MemoryStream) -> _Connection:
        with self._lock:
            if not self._open:
                raise ConnectionRefusedError("the memory server is closed")
            connection = _Connection(self, stream)
            self._connections.add(connection)
            return connection

    def _handle_text(self, text: str) -> str | None:
        return self.faults.reply(self.engine.handle_text, text)

    def _handle_binary(self, data: bytes) -> str | None:
        return self.faults.reply(self.engine.handle_binary, data)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward; every sweep and idle ping or drop that falls
        due on the way runs at its own time, in order, before this returns. Clients do not run
        in between: to let one answer a ping before it would be dropped, advance in two steps.
        """
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            target = self._now + seconds
            while True:
                due = min(
                    [self._next_sweep]
                    + [c.conn.next_deadline() for c in self._connections if not self._stalled]
                )
                if due > target:
                    break
                self._now = max(self._now, due)
                if self._next_sweep <= self._now:
                    self.engine.sweep_expired()
                    self._next_sweep += self.sweep_interval
                for connection in list(self._connections):
                    if not self._stalled and connection.conn.next_deadline() <= self._now:
                        connection.conn.handle_timeout(self._now)
                        connection.flush()
            self._now = target

    def _drop_all(self) -> None:
        with self._lock:
            for connection in list(self._connections):
                connection.end()

    def _stall(self, stalled: bool) -> None:
        with self._lock:
            self._stalled = stalled
            if not stalled:
                for connection in list(self._connections):
                    connection.unstall()

    def _restart(self, keep_data: bool) -> None:
        with self._lock:
            self._drop_all()
            if not keep_data:
                self.engine = self._new_engine()

    def close(self) -> None:
        """Close every connection with close code 1000 (as a stopping server does) and stop
        accepting new ones."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            for connection in list(self._connections):
                connection.conn.shutdown()
                connection.flush()
            _memory.unregister(self.name)

    def __enter__(self) -> MemoryServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
