"""The blocking client: moves bytes between a plain socket and the `ndb_proto` core.

It is safe to share between threads, and their requests are pipelined over one connection.
There is no I/O thread on the request path: the first waiting caller reads the socket for
everyone (leader/follower) and hands each reply to its owner, so a single thread pays no thread
switch per request. Bytes are written under the same lock that takes them from the core, so
frames reach the socket in exactly the order the core matches replies. While nobody is
waiting, a small keepalive thread reads whatever the server sent, answers its pings, and sees a
dropped connection before the next request is written.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl as _ssl
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ndb_proto.client import ClientProtocol, State
from ndb_proto.errors import ClientClosedError, ResponseError
from ndb_proto.events import Connected, ConnectionLost
from ndb_proto.uri import Endpoint
from ndb_transports._base import ClientBase, logger, state_of
from ndb_transports._options import Default
from ndb_transports._surface_sync import SyncCommands, SyncSession

__all__ = ["NdbClient", "ResponseError", "Session"]

Session = SyncSession
"""A session bound to its client; ``isinstance(s, ndb_proto.Session)`` holds too."""

_CONNECT_ERRORS = (OSError, _ssl.SSLError)
WRITE_TIMEOUT = 30.0
KEEPALIVE_CHECK = 30.0
"""Seconds between idle checks of the socket: well inside NemesisDB's 164 s ping interval."""


def _ready(socks: list[socket.socket], timeout: float | None, *, write: bool = False) -> list[int]:
    """The file descriptors among ``socks`` that are readable (or writable), waiting at most
    ``timeout`` seconds (None: no limit). poll() has no file-descriptor ceiling, unlike select();
    an error (a socket closed meanwhile) reports every socket ready, so its owner looks again."""
    fds = [sock.fileno() for sock in socks]
    if any(fd < 0 for fd in fds):
        return fds
    if _poll_factory is None:  # pragma: no cover - platforms without poll()
        try:
            if write:
                return [s.fileno() for s in select.select([], socks, [], timeout)[1]]
            return [s.fileno() for s in select.select(socks, [], [], timeout)[0]]
        except (OSError, ValueError):
            return fds
    poller = _poll_factory()
    mask = select.POLLOUT if write else select.POLLIN
    for fd in fds:
        poller.register(fd, mask)
    try:
        events = poller.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))
    except OSError:
        return fds
    return [fd for fd, _ in events]


_poll_factory = getattr(select, "poll", None)


def _write(sock: socket.socket, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking socket; give up (TimeoutError) if the server
    reads nothing for WRITE_TIMEOUT seconds."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, _ssl.SSLWantWriteError, _ssl.SSLWantReadError):
            if not _ready([sock], WRITE_TIMEOUT, write=True):
                raise TimeoutError(f"the server read nothing for {WRITE_TIMEOUT} s") from None


class _Waiter:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None


class NdbClient(ClientBase, SyncCommands):
    """A NemesisDB client over blocking sockets, safe to share between threads."""

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiters: dict[int, _Waiter] = {}
        self._sock: socket.socket | None = None
        self._busy = False  # a thread is reading the socket or (re)connecting
        # Written to wake the thread blocked in select() for everyone (see _wake_reader).
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._keepalive: threading.Thread | None = None
        self._stop_keepalive = threading.Event()

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    # -- opening -------------------------------------------------------------------------------

    def open(self, uri: str) -> bool:
        """Connect to ``uri`` (``ws://`` or ``wss://``). Returns False when it cannot connect;
        raises ValueError for an empty or malformed URI."""
        return self.connect_pool([uri])

    def connect_pool(self, uris: Sequence[str]) -> bool:
        """Connect to the first reachable server of ``uris``; later reconnects rotate through
        them. Returns False when none could be reached."""
        proto = self._new_protocol(uris)
        if self._proto is not None:
            self.close_and_wait()
        with self._lock:
            self._proto = proto
            self._busy = True
        try:
            # The first round: the core says when every server has been tried once.
            while True:
                with self._lock:
                    plan = None if proto.open_failed else proto.next_connect(self._now())
                if plan is None:
                    break
                if self._connect(proto, plan.endpoint):
                    self._start_keepalive()
                    return True
        finally:
            with self._lock:
                self._busy = False
                self._changed.notify_all()
        with self._lock:
            proto.close(self._now())
            self._process(proto)
            self._proto = None
        return False

    def _connect(self, proto: ClientProtocol, endpoint: Endpoint) -> bool:
        """One attempt, run by the thread that holds the busy role. True once open."""
        started = self._now()
        context = self.options.ssl_context(endpoint)
        timeout = self.options.connect_timeout
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
            # Non-blocking from here on: reads and writes wait in poll(), never inside a socket
            # call holding the lock (a TLS record still arriving is simply read later).
            sock.setblocking(False)
        except _CONNECT_ERRORS as exc:
            logger.info("could not connect to %s: %r", endpoint.uri, exc)
            with self._lock:
                if proto.state in (State.NEW, State.IDLE):
                    proto.connection_failed(exc, self._now())
            return False
        with self._lock:
            if proto.state not in (State.NEW, State.IDLE):
                sock.close()
                return False
            self._sock = sock
            self._waker_pair()
            proto.connection_made(endpoint, self._now(), started=started)
            self._process(proto)
        while True:
            with self._lock:
                state = state_of(proto)
                if state is not State.CONNECTING:
                    return state is State.OPEN
            self._read(proto, sock)

    def reconnect(self) -> None:
        """Drop the current connection (if any) and return once a new one is open. Requests in
        flight on the old connection fail with their outcome unknown."""
        proto = self._require_protocol()
        with self._lock:
            proto.reconnect(self._now())
            self._process(proto)
            while self._busy:
                self._changed.wait()
            self._busy = True
        try:
            while True:
                with self._lock:
                    if proto.state is State.OPEN:
                        return
                    plan = proto.next_connect(self._now())
                if plan is None:
                    raise ClientClosedError("the client was closed", outcome_unknown=False)
                delay = plan.at - self._now()
                if delay > 0:
                    time.sleep(delay)
                self._connect(proto, plan.endpoint)
        finally:
            with self._lock:
                self._busy = False
                self._changed.notify_all()

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close: pending requests fail with `ClientClosedError`, a close frame is sent, and the
        connection is closed once the server answers (or after close_timeout)."""
        proto = self._proto
        if proto is None:
            return
        self._stop_keepalive.set()
        with self._lock:
            proto.close(self._now())
            self._process(proto)
            self._wake_reader()  # its caller's request just failed: let it go
        self.wait_closed()

    def wait_closed(self) -> None:
        """Wait until a close has finished (returns at once if nothing is closing)."""
        proto = self._proto
        if proto is None:
            return
        while True:
            with self._lock:
                if proto.state is not State.CLOSING:
                    break
                if self._busy:
                    # Another thread reads; the close timeout is still ours to enforce.
                    self._changed.wait(0.1)
                    self._expire(proto)
                    continue
                self._busy = True
                sock = self._sock
            try:
                if sock is None:
                    with self._lock:
                        proto.connection_lost(None, self._now())
                        self._process(proto)
                else:
                    self._read(proto, sock)
            finally:
                with self._lock:
                    self._busy = False
                    self._changed.notify_all()
        self._drop_socket()

    def close_and_wait(self) -> None:
        self.close()

    def __enter__(self) -> NdbClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------

    def _execute(self, request: Any, timeout: float | None | Default) -> Any:
        proto = self._require_protocol()
        seconds = self._timeout(timeout)
        waiter = _Waiter()
        with self._lock:
            now = self._now()
            self._expire(proto)  # a connection past its reply grace is given up before writing
            if not self._busy and proto.state is State.OPEN:
                # Nobody is reading: take what arrived meanwhile (a close, an EOF, a ping), so
                # a request is not written to a connection that is already gone.
                self._poll(proto)
            deadline = None if seconds is None else now + seconds
            request_id = proto.submit(request, deadline)
            self._waiters[request_id] = waiter
            self._process(proto)
        try:
            self._wait(proto, waiter)
        except BaseException:
            # KeyboardInterrupt and the like: give the request up without breaking the FIFO.
            with self._lock:
                if self._waiters.pop(request_id, None) is not None:
                    proto.abandon(request_id)
            raise
        if waiter.error is not None:
            raise waiter.error
        return waiter.value

    def _wait(self, proto: ClientProtocol, waiter: _Waiter) -> None:
        """Block until the waiter is resolved, reading or reconnecting for everyone if no other
        thread is."""
        while True:
            with self._lock:
                if waiter.done:
                    return
                if self._busy:
                    deadline = proto.next_deadline()
                    wait = None if deadline is None else max(0.0, deadline - self._now())
                    self._changed.wait(wait)
                    if not self._busy:
                        continue
                    self._expire(proto)
                    continue
                self._busy = True
                sock = self._sock
                state = proto.state
            try:
                if state is State.OPEN or state is State.CLOSING:
                    assert sock is not None
                    self._read(proto, sock)
                else:
                    self._reconnect_or_wait(proto)
            finally:
                with self._lock:
                    self._busy = False
                    self._changed.notify_all()

    def _reconnect_or_wait(self, proto: ClientProtocol) -> None:
        """No connection: follow the core's reconnect plan, or wait for the next deadline."""
        with self._lock:
            plan = proto.next_connect(self._now())
            deadline = proto.next_deadline()
        now = self._now()
        if plan is not None and plan.at <= now:
            self._connect(proto, plan.endpoint)
            return
        wake = plan.at if plan is not None else deadline
        if wake is not None and (deadline is None or deadline < wake):
            wake = deadline
        if wake is None:
            # Nothing will ever happen: the core has failed every request already.
            with self._lock:
                self._process(proto)
            return
        time.sleep(max(0.0, min(wake - now, 1.0)))
        with self._lock:
            self._expire(proto)

    def _read(self, proto: ClientProtocol, sock: socket.socket) -> None:
        """Wait (without the lock, at most until the core's next deadline) for the socket to
        become readable, then read and process under the lock."""
        with self._lock:
            deadline = proto.next_deadline()
            buffered = isinstance(sock, _ssl.SSLSocket) and sock.pending() > 0
        if not buffered:
            wait = None if deadline is None else max(0.0, deadline - self._now())
            with self._lock:
                waker_pair = self._waker
            if waker_pair is None:  # closed meanwhile
                return
            waker = waker_pair[0]
            ready = _ready([sock, waker], wait)
            if waker.fileno() in ready:
                # close() wants the reading thread to let go and look again.
                with contextlib.suppress(OSError):
                    waker.recv(4096)
            if sock.fileno() not in ready or sock.fileno() < 0:
                with self._lock:
                    self._expire(proto)
                return
        with self._lock:
            self._recv(proto, sock)

    def _waker_pair(self) -> tuple[socket.socket, socket.socket]:
        """A socket pair whose reading end the reading thread's select() also watches."""
        if self._waker is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._waker = (reader, writer)
        return self._waker

    def _wake_reader(self) -> None:
        """Under the lock: make the thread blocked in select() return and look again."""
        if self._waker is not None:
            with contextlib.suppress(BlockingIOError):
                self._waker[1].send(b"\0")

    def _release_waker(self) -> None:
        waker, self._waker = self._waker, None
        if waker is not None:
            waker[0].close()
            waker[1].close()

    def _poll(self, proto: ClientProtocol) -> None:
        """Under the lock, with no reader: take whatever already arrived, without waiting."""
        sock = self._sock
        if sock is None:
            return
        if not (isinstance(sock, _ssl.SSLSocket) and sock.pending() > 0) and not _ready([sock], 0):
            return
        self._recv(proto, sock)

    def _recv(self, proto: ClientProtocol, sock: socket.socket) -> None:
        """Under the lock, once the socket is readable: one recv, fed to the core."""
        if self._sock is not sock:
            return  # that connection was dropped meanwhile
        try:
            data = sock.recv(65536)
        except (BlockingIOError, _ssl.SSLWantReadError, _ssl.SSLWantWriteError):
            return  # nothing after all, or part of a TLS record: the rest comes later
        except OSError as exc:
            proto.connection_lost(exc, self._now())
            self._process(proto)
            return
        now = self._now()
        proto.receive_data(data, now)
        if not data:
            proto.connection_lost(None, now)
        self._process(proto)

    def _expire(self, proto: ClientProtocol) -> None:
        """Under the lock: act on deadlines that have passed."""
        deadline = proto.next_deadline()
        if deadline is not None and deadline <= self._now():
            proto.handle_timeout(self._now())
            self._process(proto)

    def _process(self, proto: ClientProtocol) -> None:
        """Under the lock: write what the core wants sent, then hand out its events.

        Writing here, in the same critical section that takes the bytes from the core, is what
        keeps frames in FIFO order when several threads submit at once.
        """
        while True:
            data = proto.data_to_send()
            sock = self._sock
            if data and sock is not None:
                try:
                    _write(sock, data)
                except OSError as exc:
                    proto.connection_lost(exc, self._now())
                    continue  # collect the events of the loss too
            events = proto.events()
            if not events:
                return
            self._dispatch(events)

    # -- keepalive -----------------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        self._stop_keepalive = threading.Event()
        interval = min(KEEPALIVE_CHECK, self.options.ping_interval or KEEPALIVE_CHECK)
        thread = threading.Thread(
            target=self._keepalive_loop,
            args=(self._proto, self._stop_keepalive, interval),
            name="ndb-keepalive",
            daemon=True,
        )
        self._keepalive = thread
        thread.start()

    def _keepalive_loop(
        self, proto: ClientProtocol, stop: threading.Event, interval: float
    ) -> None:
        while not stop.wait(interval):
            with self._lock:
                if proto.state is State.CLOSED:
                    return
                if self._busy:
                    continue
                self._expire(proto)
                if proto.state is State.OPEN:
                    self._poll(proto)

    # -- the core's events ---------------------------------------------------------------------

    def _resolve(self, request_id: int, value: Any) -> None:
        waiter = self._waiters.pop(request_id, None)
        if waiter is not None:
            waiter.value = value
            waiter.done = True
            self._changed.notify_all()

    def _reject(self, request_id: int, error: BaseException) -> None:
        waiter = self._waiters.pop(request_id, None)
        if waiter is not None:
            waiter.error = error
            waiter.done = True
            self._changed.notify_all()

    def _connected(self, event: Connected) -> None:
        self._changed.notify_all()

    def _connection_lost(self, event: ConnectionLost) -> None:
        self._drop_socket()
        self._changed.notify_all()

    def _closed(self) -> None:
        self._drop_socket()
        self._release_waker()
        self._stop_keepalive.set()
        self._changed.notify_all()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            # shutdown() first: it wakes a thread blocked in recv() on this socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
