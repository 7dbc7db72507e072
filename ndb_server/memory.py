"""`MemoryServer`: the embedded server with no socket and its own clock, for fast tests.

It runs the same `Engine` and the same per-connection code (`ServerConnection`) as the socket
server, fed with the bytes a client writes to a ``memory://`` URL (`ndb_transports._memory`), so
a client sees the same bytes, the same closes and drops, and the same replies dropped under
backpressure: here every byte the client has not read yet counts, as if the socket buffers were
empty. Each command runs in the thread of the client that sent it, under one lock, so commands
stay atomic as on the single-threaded real server, and one server serves any number of clients
from any threads and event loops.

Time is virtual: it stands still until `advance` moves it, and then the expiry sweep, session
expiry and the idle ping and drop of each connection happen in the order they fall due. Given a
``clock`` (a `ndb_transports.clock.VirtualClock`, whose event loops asyncio clients run on,
or trio's ``MockClock``), the server follows that clock instead, so the test's clients and the
server share one time: whatever fell due runs before the server next reads a request, when a
`VirtualClock` moves, and, for clients of the event loop or trio run that owns the clock, at its
own time (their memory stream wakes up then, see `ndb_transports._memory`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from types import TracebackType

from ndb_server._keywords import MemoryServerKeywords
from ndb_server._timeline import Timeline
from ndb_server.connection import Outcome, ServerConnection
from ndb_server.engine import Engine
from ndb_server.faults import FaultControls, FaultPlan
from ndb_server.options import ServerOptions
from ndb_transports import _memory
from ndb_transports.clock import VirtualClock, time_source

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
            now=server._timeline.now,
            idle_ping=server.idle_ping,
            idle_timeout=server.idle_timeout,
            backpressure_limit=server.backpressure_limit,
            unsent=lambda: stream.unread,
        )

    def receive(self, data: bytes) -> None:
        server = self.server
        with server._lock:
            if server._read_clock is not None:
                server._catch_up()
            if self.ended:
                raise BrokenPipeError("the memory server ended the connection")
            if server._stalled:
                self.held += data
                self.held_eof = self.held_eof or not data
                return
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        server = self.server
        self.conn.receive_data(data, server._timeline.now)
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

    def time_passed(self, now: float) -> None:
        self.conn.handle_timeout(now)
        self.flush()

    # -- for a client following the server's clock (see ndb_transports._memory) ------------------
    def follows(self, clock: object) -> bool:
        return self.server.clock is not None and self.server.clock is clock

    def next_due(self) -> float | None:
        with self.server._lock:
            if self.ended or self.server._stalled:
                return None
            return Timeline.next_deadline([self])

    def catch_up(self) -> None:
        with self.server._lock:
            self.server._catch_up()

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


class MemoryServer(MemoryServerKeywords, FaultControls):
    """An in-process NemesisDB 0.7.4-compatible server reached at ``server.url``
    (``memory://ndb-N/``) by every client flavour, with a virtual clock and faults on cue.

    The options (`ndb_server.options.ServerOptions`) mean what they mean for
    `ndb_server.server.NdbServer`; ``start_time`` is where the server's own clock starts, and
    ``clock`` makes it follow a test's clock instead. Use it as a context manager, or call
    `close` when done.
    """

    def _configure(self, name: str | None, start_time: float, options: ServerOptions) -> None:
        self.options = options
        self.name = name if name is not None else f"ndb-{next(_names)}"
        self.faults = FaultPlan()
        self._lock = threading.RLock()
        self._read_clock: Callable[[], float] | None = None
        if options.clock is not None:
            self._read_clock = time_source(options.clock)
            start_time = self._read_clock()
        self._timeline = Timeline(float(start_time), options.sweep_interval)
        self._stalled = False
        self._connections: set[_Connection] = set()
        self.engine = self._new_engine()
        self._open = True
        _memory.register(self.name, self._accept)
        self._follower: _Follower | None = None
        if isinstance(options.clock, VirtualClock):
            self._follower = _Follower(self)
            options.clock.follow(self._follower)

    def _new_engine(self) -> Engine:
        timeline = self._timeline
        return Engine(clock=lambda: timeline.now, persist_dir=self.persist_dir)

    @property
    def url(self) -> str:
        return f"memory://{self.name}/"

    @property
    def now(self) -> float:
        """The server's time in seconds: ``start_time`` plus every `advance`, or the time of the
        clock it follows."""
        with self._lock:
            self._catch_up()
            return self._timeline.now

    @property
    def connection_count(self) -> int:
        """How many clients are connected now."""
        with self._lock:
            return len(self._connections)

    def _accept(self, stream: _memory.MemoryStream) -> _Connection:
        with self._lock:
            if not self._open:
                raise ConnectionRefusedError("the memory server is closed")
            self._catch_up()
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

        A server following a ``clock`` moves that clock (`VirtualClock.advance`, or
        ``MockClock.jump``); a clock it cannot move (a plain function) raises TypeError."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"seconds must be a number, got {seconds!r}")
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        clock = self.clock
        if clock is None:
            with self._lock:
                self._run_until(self._timeline.now + seconds)
            return
        if isinstance(clock, VirtualClock):
            clock.advance(seconds)
        elif callable(getattr(clock, "jump", None)):
            clock.jump(seconds)
        else:
            raise TypeError(f"this server follows {clock!r}: move that clock instead")
        with self._lock:
            self._catch_up()

    def _catch_up(self) -> None:
        """Under the lock: run what fell due on the clock the server follows."""
        if self._read_clock is not None:
            self._run_until(self._read_clock())

    def _run_until(self, target: float) -> None:
        self._timeline.run_until(
            target,
            self.engine.sweep_expired,
            lambda: () if self._stalled else list(self._connections),
        )

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
            if self._follower is not None and isinstance(self.clock, VirtualClock):
                self.clock.unfollow(self._follower)

    def __enter__(self) -> MemoryServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Follower:
    """What a `VirtualClock` calls as it moves (held by the server; the clock holds it weakly)."""

    def __init__(self, server: MemoryServer) -> None:
        self._server = server

    def next_due(self) -> float | None:
        server = self._server
        with server._lock:
            return None if server._stalled else Timeline.next_deadline(server._connections)

    def catch_up(self) -> None:
        with self._server._lock:
            self._server._catch_up()
