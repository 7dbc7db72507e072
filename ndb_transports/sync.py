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
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from ndb_proto.client import ClientProtocol, State
from ndb_proto.errors import ClientClosedError, ResponseError
from ndb_proto.events import Connected, ConnectionLost, ReplyReceived
from ndb_proto.uri import Endpoint
from ndb_transports import _memory
from ndb_transports._base import ClientBase, logger, state_of
from ndb_transports._keywords import SyncClientKeywords
from ndb_transports._options import Default, SyncOptions
from ndb_transports._pipeline import SyncPipeline
from ndb_transports._reader_role import ReaderRole, Waiter
from ndb_transports._surface_sync import SyncCommands, SyncSession

__all__ = ["NdbClient", "ResponseError", "Session", "SyncPipeline"]

Session = SyncSession
"""A session bound to its client; ``isinstance(s, ndb_proto.Session)`` holds too."""

_CONNECT_ERRORS = (OSError, _ssl.SSLError)
# The states read on every request, looked up once: on Python 3.11 and older, reading a member
# of an Enum class goes through EnumType.__getattr__, about 0.4 µs each time.
_OPEN = State.OPEN
_CLOSING = State.CLOSING
WRITE_TIMEOUT = 30.0
READ_SIZE = 65536
"""Bytes asked of one recv; a read that fills it is followed by another without waiting."""
POLL_READS = 4
"""At most this many reads when a thread looks at the socket without waiting (see `_poll`)."""
KEEPALIVE_CHECK = 4.0
"""Seconds between idle checks of the socket. What bounds it is not NemesisDB's ping interval
(164 s of silence) but the 16 s it then allows for the pong before dropping the connection:
an idle client must look at its socket several times within those 16 s."""


def _ready(sock: socket.socket, timeout: float, *, to_read: bool = False) -> bool:
    """Whether ``sock`` becomes writable (``to_read``: readable) within ``timeout`` seconds (a
    socket closed meanwhile counts as ready: its owner finds out when it writes)."""
    if sock.fileno() < 0:
        return True
    try:
        if to_read:
            return bool(select.select([sock], [], [], timeout)[0])
        return bool(select.select([], [sock], [], timeout)[1])
    except (OSError, ValueError):
        return True


def _write(sock: socket.socket, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking socket; give up (TimeoutError) if the server
    reads nothing for WRITE_TIMEOUT seconds. A TLS socket that must read before it can write
    (`ssl.SSLWantReadError`: a key update, a renegotiation) waits for bytes to read; waiting
    for room to write instead would return at once, again and again (a busy loop)."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, _ssl.SSLWantWriteError):
            if not _ready(sock, WRITE_TIMEOUT):
                raise TimeoutError(f"the server read nothing for {WRITE_TIMEOUT} s") from None
        except _ssl.SSLWantReadError:
            if not _ready(sock, WRITE_TIMEOUT, to_read=True):
                raise TimeoutError(f"the server sent nothing for {WRITE_TIMEOUT} s") from None


class _Poller:
    """One poll object per connection, watching its socket and the waker, kept for the
    connection's life (a new object per wait cost a system call and allocations each time).
    Only the thread holding the reader role (or, with nobody holding it, a thread under the
    lock) uses it, so it is never polled twice at once."""

    def __init__(self, sock: socket.socket, waker: socket.socket) -> None:
        self.sock_fd = sock.fileno()
        self.waker = waker
        self.waker_fd = waker.fileno()
        self._poll: Any = None
        if _HAS_POLL:
            self._poll = select.poll()
            self._poll.register(self.sock_fd, select.POLLIN)
            self._poll.register(self.waker_fd, select.POLLIN)

    def readable(self, timeout: float | None) -> bool:
        """Whether the socket is readable within ``timeout`` seconds (None: no limit); a wake
        from another thread (or an error: the socket was closed meanwhile) ends the wait too."""
        if self._poll is None:  # pragma: no cover - platforms without poll()
            try:
                ready = select.select([self.sock_fd, self.waker_fd], [], [], timeout)[0]
            except (OSError, ValueError):
                return True
            events = [(fd, 0) for fd in ready]
        else:
            try:
                events = self._poll.poll(
                    None if timeout is None else max(0, int(timeout * 1000 + 0.999))
                )
            except (OSError, RuntimeError):
                return True
        readable = False
        for fd, _ in events:
            if fd == self.waker_fd:
                # close() wants the reading thread to let go and look again.
                with contextlib.suppress(OSError):
                    self.waker.recv(4096)
            else:
                readable = True
        return readable


_HAS_POLL = hasattr(select, "poll")
_get_ident = threading.get_ident


class NdbClient(SyncClientKeywords, ClientBase, SyncCommands):
    """A NemesisDB client over blocking sockets, safe to share between threads.

    With ``clock=VirtualClock()`` its time (timeouts, reconnect backoff, keepalive) is the
    clock's, and its waits end when the clock passes their deadline, or, as always, as soon as
    a reply comes."""

    def _setup(self) -> None:
        self._lock = threading.Lock()
        clock = self.options.clock if isinstance(self.options, SyncOptions) else None
        self._clock = clock
        self._now: Callable[[], float] = time.monotonic if clock is None else clock.current_time
        self._keepalive_tick = threading.Event()  # wakes the keepalive thread on clock moves
        self._role = ReaderRole(self._lock, clock)
        self._waiters: dict[int, Waiter] = {}
        self._sock: socket.socket | None = None
        self._tls = False  # whether _sock is a TLS socket
        # The sockets threads use without the lock, to wait and read (the reader role's holder)
        # and to write (the writing thread, `_writer`, its thread's id): one dropped meanwhile
        # stays open until the last of them is done with it (see `_close_if_unused`).
        self._reading_sock: socket.socket | None = None
        self._writing_sock: socket.socket | None = None
        self._writer: int | None = None
        self._poller: _Poller | None = None
        # Written to wake the thread blocked in poll() for everyone (see _wake_reader).
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._keepalive: threading.Thread | None = None
        self._stop_keepalive = threading.Event()

    # -- the reader role ----------------------------------------------------------------------

    def _take_role(self, proto: ClientProtocol, waiter: Waiter) -> None:
        """Take the reader role for ``waiter``, following whoever holds it until it is free
        (to open, reconnect or finish a close: a request's own wait is `_wait`). Run inside
        `ReaderRole.taking_part`, which lets the role go however the caller ends."""
        role = self._role
        while True:
            with self._lock:
                if role.take(waiter):
                    return
                role.enlist(waiter)
                timeout = self._until_deadline(proto)
            self._follow(proto, waiter, timeout)

    def _follow(self, proto: ClientProtocol, waiter: Waiter, timeout: float | None) -> None:
        """Enlisted by the caller (under the lock, as it decided to sleep): sleep ``timeout``
        seconds of the client's clock (None: no limit), or less if woken (the role handed to
        this thread, the end of ``waiter``'s request, a change of the connection: a close);
        then act on deadlines that passed meanwhile: the holder of the role may be stuck, or
        this thread holds it and slept through a backoff. Deadlines are everyone's."""
        role = self._role
        role.doze(waiter, timeout)
        with self._lock:
            role.withdraw(waiter)
            if role.holder is not None:
                self._expire(proto)

    def _until_deadline(self, proto: ClientProtocol) -> float | None:
        deadline = proto.next_deadline()
        return None if deadline is None else max(0.0, deadline - self._now())

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
        role = self._role
        waiter = role.waiter()
        with role.taking_part(waiter):
            with self._lock:
                self._proto = proto
                # In the same hold: no thread may start connecting it for a request first.
                taken = role.take(waiter)
            if not taken:
                self._take_role(proto, waiter)
            # The first round: the core says when every server has been tried once.
            while True:
                with self._lock:
                    plan = None if proto.open_failed else proto.next_connect(self._now())
                if plan is None:
                    break
                if self._connect(proto, plan.endpoint):
                    self._start_keepalive()
                    return True
        with self._lock:
            proto.close(self._now())
            self._process(proto)
            self._proto = None
        return False

    def _connect(self, proto: ClientProtocol, endpoint: Endpoint) -> bool:
        """One attempt, run by the thread that holds the reader role. True once open."""
        started = self._now()
        context = self.options.ssl_context(endpoint)
        timeout = self.options.connect_timeout
        try:
            sock: socket.socket
            if endpoint.in_memory:
                sock = _memory.open_socket(endpoint)
            else:
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
            self._tls = isinstance(sock, _ssl.SSLSocket)
            self._poller = _Poller(sock, self._waker_pair()[0])
            proto.connection_made(endpoint, self._now(), started=started)
            self._process(proto)
        fresh = False
        while True:
            with self._lock:
                state = state_of(proto)
                if state is not State.CONNECTING:
                    return state is State.OPEN
            fresh = self._read(proto, sock, fresh)

    def reconnect(self) -> None:
        """Drop the current connection (if any) and return once a new one is open. Requests in
        flight on the old connection fail with their outcome unknown."""
        proto = self._require_protocol()
        role = self._role
        waiter = role.waiter()
        with role.taking_part(waiter):
            with self._lock:
                proto.reconnect(self._now())
                self._process(proto)
                taken = role.take(waiter)
            if not taken:
                self._take_role(proto, waiter)
            while True:
                with self._lock:
                    if proto.state is State.OPEN:
                        return
                    plan = proto.next_connect(self._now())
                    delay = 0.0 if plan is None else plan.at - self._now()
                    if delay > 0:
                        role.enlist(waiter)  # a close wakes it
                if plan is None:
                    raise ClientClosedError("the client was closed", outcome_unknown=False)
                if delay > 0:
                    self._follow(proto, waiter, delay)
                    continue  # the plan again: a close may have woken it
                self._connect(proto, plan.endpoint)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close: pending requests fail with `ClientClosedError`, a close frame is sent, and the
        connection is closed once the server answers (or after close_timeout)."""
        proto = self._proto
        if proto is None:
            return
        self._stop_keepalive.set()
        self._keepalive_tick.set()
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
        role = self._role
        waiter = role.waiter()
        fresh = False
        with role.taking_part(waiter):
            while True:
                with self._lock:
                    if proto.state is not State.CLOSING:
                        break
                    sock = self._sock
                    lead = role.holder is waiter or role.take(waiter)
                    if not lead:
                        role.enlist(waiter)
                        timeout = self._until_deadline(proto)
                if not lead:
                    # Another thread reads (until its own request fails): follow it, and look
                    # again when woken (it let go, or the connection closed) or at the next
                    # deadline (deadlines are everyone's: the close timeout too).
                    self._follow(proto, waiter, timeout)
                elif sock is None:
                    with self._lock:
                        proto.connection_lost(None, self._now())
                        self._process(proto)
                else:
                    fresh = self._read(proto, sock, fresh)
        with self._lock:
            # Only a connection that is closed loses its socket here (the Closed event drops
            # it too); an open one, or one opened meanwhile by another thread, keeps it.
            if proto.state is State.CLOSED and self._proto is proto:
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

    def pipeline(self) -> SyncPipeline:
        """A pipeline: commands queued on it leave together on ``execute()``, which returns
        their results in order (see `SyncPipeline`)."""
        return SyncPipeline(
            self._execute_many,
            lambda tkn: SyncSession(self, tkn),
            self.options.max_message_size,
        )

    def _execute(self, request: Any, timeout: float | None | Default) -> Any:
        proto = self._proto
        if proto is None:
            proto = self._require_protocol()
        waiter = self._role.waiter()
        (request_id,) = self._submit(proto, [request], [waiter], timeout)
        self._wait_for(proto, (request_id,), (waiter,))
        if waiter.error is not None:
            raise waiter.error
        return waiter.value

    def _execute_many(self, requests: list[Any], timeout: float | None | Default) -> list[Any]:
        """A pipeline's requests: every one's value, or its exception, in order."""
        proto = self._require_protocol()
        waiter = self._role.waiter
        waiters = [waiter() for _ in requests]
        request_ids = self._submit(proto, requests, waiters, timeout)
        self._wait_for(proto, request_ids, waiters)
        return [w.value if w.error is None else w.error for w in waiters]

    def _submit(
        self,
        proto: ClientProtocol,
        requests: list[Any],
        waiters: list[Waiter],
        timeout: float | None | Default,
    ) -> list[int]:
        """Queue the requests in the core (all or none), then write them, without the lock,
        unless another thread is writing (see `_claim_write`)."""
        seconds = self._timeout(timeout)
        lock = self._lock
        try:
            with lock:
                now = self._now()
                # A connection past its reply grace is given up before writing (as in _expire).
                due = proto.next_deadline()
                if due is not None and due <= now:
                    proto.handle_timeout(now)
                    self._process(proto)
                if self._role.holder is None and proto.state is _OPEN:
                    # Nobody is reading: take what arrived meanwhile (a close, an EOF, a ping),
                    # so a request is not written to a connection that is already gone.
                    self._poll(proto)
                deadline = None if seconds is None else now + seconds
                if len(requests) == 1:
                    request_ids = [proto.submit(requests[0], deadline)]
                else:
                    request_ids = proto.submit_many(requests, deadline)
                for request_id, waiter in zip(request_ids, waiters, strict=True):
                    self._waiters[request_id] = waiter
                self._process(proto, flush=False)
                claimed = self._claim_write(proto)
            if claimed is not None:
                self._write_claimed(proto, *claimed)
        except BaseException:
            with lock:
                self._interrupted_writer(proto)  # even just after it claimed the write
            raise
        return request_ids

    def _wait_for(
        self, proto: ClientProtocol, request_ids: Sequence[int], waiters: Sequence[Waiter]
    ) -> None:
        """Wait for every waiter, in order; on KeyboardInterrupt and the like, give up those
        not resolved without breaking the FIFO."""
        try:
            for waiter in waiters:
                self._wait(proto, waiter)
        except BaseException:
            with self._lock:
                for request_id in request_ids:
                    if self._waiters.pop(request_id, None) is not None:
                        proto.abandon(request_id)
                # Wherever the exception came (even just after the role was handed to this
                # thread, or taken by it), the role goes on to the next follower.
                self._role.leave(waiters)
            raise

    def _wait(self, proto: ClientProtocol, waiter: Waiter) -> None:
        """Block until the waiter is resolved, holding the reader role (reading or reconnecting
        for everyone) whenever no other thread holds it."""
        lock, role = self._lock, self._role
        while True:
            with lock:
                if waiter.done:
                    role.pass_on()  # a hand-off meant for this thread must not be lost
                    return
                lead = role.take(waiter)
                if not lead:
                    role.enlist(waiter)
                    timeout = self._until_deadline(proto)
            if lead:
                try:
                    self._lead(proto, waiter)
                finally:
                    with lock:
                        role.release()
                if waiter.done:
                    return
                continue
            role.doze(waiter, timeout)  # interrupted: `_wait_for` leaves the role
            if waiter.done:
                # Woken by its own reply (set before the wake): no lock needed, unless the
                # role was handed to this thread meanwhile; then it goes to the next sleeper.
                if waiter.handed:
                    with lock:
                        role.pass_on()
                return
            with lock:
                role.withdraw(waiter)
                if not waiter.done and role.holder is not None:
                    self._expire(proto)  # the holder may be stuck: deadlines are everyone's

    def _lead(self, proto: ClientProtocol, waiter: Waiter) -> None:
        """Holding the reader role: read or reconnect until ``waiter`` is resolved. (``done``,
        the socket and the state are read without the lock: each is one attribute, set under
        the lock by other threads, and `_read` checks the socket again under the lock.)"""
        fresh = False  # whether the last read filled its buffer: more may be there already
        while not waiter.done:
            sock = self._sock
            state = proto.state
            if (state is _OPEN or state is _CLOSING) and sock is not None:
                fresh = self._read(proto, sock, fresh)
            else:
                fresh = False
                self._reconnect_or_wait(proto, waiter)

    def _reconnect_or_wait(self, proto: ClientProtocol, waiter: Waiter) -> None:
        """No connection: follow the core's reconnect plan, or wait for the next deadline (or
        until ``waiter``'s request fails, or the client is closed)."""
        with self._lock:
            now = self._now()
            plan = proto.next_connect(now)
            if plan is not None and plan.at <= now:
                nap = None
            else:
                deadline = proto.next_deadline()
                wake = plan.at if plan is not None else deadline
                if deadline is not None and (wake is None or deadline < wake):
                    wake = deadline
                if wake is None:
                    # Nothing will ever happen: the core has failed every request already.
                    self._process(proto)
                    return
                if waiter.done:
                    return
                # At most a second at a time: a request submitted meanwhile may have an
                # earlier deadline.
                nap = max(0.0, min(wake - now, 1.0))
                self._role.enlist(waiter)  # its request's end (or a close) wakes it
        if nap is None:
            assert plan is not None
            self._connect(proto, plan.endpoint)
            return
        self._follow(proto, waiter, nap)

    def _read(self, proto: ClientProtocol, sock: socket.socket, fresh: bool) -> bool:
        """Holding the reader role: one read, fed to the core. Unless ``fresh`` (the last read
        filled its buffer, so more may be there), first wait without the lock, at most until the
        core's next deadline, for the socket to become readable. Returns whether the read filled
        its buffer.

        A plain socket is waited for and read without the lock (a system call under it would
        hold up every thread that submits meanwhile); if it is dropped meanwhile, this thread
        closes it afterwards (`_drop_socket` leaves it open), so that its file descriptor cannot
        be reused by a new connection under the wait or the read. A TLS socket is waited for the
        same way but read under the lock: OpenSSL does not support a read beside a write on one
        connection.

        Bytes read are fed to the core before anything else: if this thread is interrupted
        (KeyboardInterrupt) in or after the read before the core has them, those bytes are lost,
        so the connection is given up rather than left out of step. An interrupt anywhere else
        (the wait, most likely) leaves the connection alone, and never leaves ``sock`` marked
        as being read."""
        lock = self._lock
        reading = False  # bytes may have left the socket that the core has not had
        try:
            with lock:
                poller = self._poller
                if poller is None or self._sock is not sock:
                    return False  # that connection was dropped meanwhile
                tls = self._tls
                wait = None
                wait_first = not fresh and not (tls and sock.pending() > 0)  # type: ignore[attr-defined]
                if wait_first:
                    due = proto.next_deadline()
                    if due is not None:
                        wait = max(0.0, due - self._now())
                self._reading_sock = sock
            if wait_first and not (
                poller.readable(wait) if self._clock is None else self._readable(poller, wait)
            ):
                with lock:
                    self._done_reading(sock)
                    self._expire(proto)
                return False
            reading = True
            if tls:
                with lock:
                    return self._done_reading(sock) and self._recv(proto, sock)
            data = sock.recv(READ_SIZE)
            with lock:
                claimed = None
                if self._done_reading(sock):
                    self._feed(proto, data, flush=False)
                    claimed = self._claim_write(proto)  # a pong, say: written without the lock
                reading = False
            if claimed is not None:
                self._write_claimed(proto, *claimed)
        except (BlockingIOError, InterruptedError):
            with lock:
                self._done_reading(sock)
            return False  # nothing after all
        except OSError as exc:
            with lock:
                if self._done_reading(sock):
                    proto.connection_lost(exc, self._now())
                    self._process(proto)
            return False
        except BaseException:
            with lock:
                if self._done_reading(sock) and reading:
                    proto.connection_lost(None, self._now())
                    self._process(proto)
                self._interrupted_writer(proto)  # even just after it claimed the write
            raise
        return len(data) == READ_SIZE

    def _done_reading(self, sock: socket.socket) -> bool:
        """Under the lock, after a wait or read without it: whether ``sock`` is still the
        connection's socket; if it was dropped meanwhile, it is closed now (`_drop_socket` left
        it open)."""
        if self._reading_sock is not sock:
            return self._sock is sock  # already done with (a second call after an interrupt)
        self._reading_sock = None
        if self._sock is sock:
            return True
        self._close_if_unused(sock)
        return False

    def _close_if_unused(self, sock: socket.socket) -> None:
        """Under the lock: close ``sock`` if it is no longer the connection's and no thread
        reads or writes it without the lock. A dropped socket is closed by the last of them to
        let go of it (`_drop_socket`, `_done_reading`, `_done_writing`): closed earlier, its file
        descriptor could be reused by a new connection (the reconnection's) under a wait, a read
        or a write that already took it, and an old request would go out on the new connection
        (a silent resend)."""
        in_use = (self._sock, self._reading_sock, self._writing_sock)
        if sock not in in_use:
            sock.close()

    def _readable(self, poller: _Poller, timeout: float | None) -> bool:
        """`_Poller.readable` on the client's VirtualClock: a move of the clock wakes it."""
        assert self._clock is not None

        def wake() -> None:
            waker = self._waker
            if waker is not None:
                with contextlib.suppress(OSError):
                    waker[1].send(b"\0")

        return self._clock.wait(timeout, poller.readable, wake)

    def _waker_pair(self) -> tuple[socket.socket, socket.socket]:
        """A socket pair whose reading end the reading thread's poll() also watches."""
        if self._waker is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._waker = (reader, writer)
        return self._waker

    def _wake_reader(self) -> None:
        """Under the lock: make the thread blocked in poll() return and look again."""
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
        sock, poller = self._sock, self._poller
        if sock is None or poller is None:
            return
        # More than one read when there is more: a server's idle ping can have the end of the
        # stream right behind it, and a request written after only the ping would go onto a
        # dropped connection (an unknown outcome for a request the server never saw).
        for _ in range(POLL_READS):
            if self._sock is not sock:
                return  # the read found the connection gone
            if not ((self._tls and sock.pending() > 0) or poller.readable(0)):  # type: ignore[attr-defined]
                return
            self._recv(proto, sock)

    def _recv(self, proto: ClientProtocol, sock: socket.socket) -> bool:
        """Under the lock: one recv (never waiting), fed to the core. True when it filled its
        buffer (more may be there)."""
        if self._sock is not sock:
            return False  # that connection was dropped meanwhile
        try:
            data = sock.recv(READ_SIZE)
        except (BlockingIOError, _ssl.SSLWantReadError, _ssl.SSLWantWriteError):
            return False  # nothing after all, or part of a TLS record: the rest comes later
        except OSError as exc:
            proto.connection_lost(exc, self._now())
            self._process(proto)
            return False
        self._feed(proto, data)
        return len(data) == READ_SIZE

    def _feed(self, proto: ClientProtocol, data: bytes, *, flush: bool = True) -> None:
        """Under the lock: bytes just read (b"": the end of the stream) to the core, and what
        it resolved to the waiting threads (``flush``: see `_process`)."""
        now = self._now()
        try:
            proto.receive_data(data, now)
            if not data:
                proto.connection_lost(None, now)
        finally:
            # Whatever the core resolved reaches its threads. If the data ended the connection
            # (a close frame, a bad reply), its last frame (the close) is written first, here,
            # before the socket is dropped with the events.
            self._process(proto, flush=flush or proto.state is not _OPEN)

    def _expire(self, proto: ClientProtocol) -> None:
        """Under the lock: act on deadlines that have passed."""
        deadline = proto.next_deadline()
        if deadline is not None and deadline <= self._now():
            proto.handle_timeout(self._now())
            self._process(proto)

    def _process(self, proto: ClientProtocol, *, flush: bool = True) -> None:
        """Under the lock: hand out the core's events, and write what it wants sent unless
        another thread is writing (it takes these bytes too before it lets go) or ``flush``
        is False (the caller then claims the writing, see `_claim_write`).

        Bytes are only ever taken from the core by the one thread writing, in order, which is
        what keeps frames in FIFO order when several threads submit at once.
        """
        while True:
            if flush and self._writer is None and proto.has_data_to_send:
                data = proto.data_to_send()
                sock = self._sock
                if sock is not None:
                    try:
                        _write(sock, data)
                    except OSError as exc:
                        proto.connection_lost(exc, self._now())
                        continue  # collect the events of the loss too
                    except BaseException:
                        # KeyboardInterrupt mid-write: those bytes (other threads' requests
                        # too) may be lost or cut, so the connection is no longer in step.
                        proto.connection_lost(None, self._now())
                        self._dispatch(proto.events())
                        raise
            events = proto.events()
            if not events:
                return
            if len(events) == 1 and type(events[0]) is ReplyReceived:
                # The usual case, without the generic dispatch: one reply for one waiter.
                waiter = self._waiters.pop(events[0].request_id, None)
                if waiter is not None:
                    self._role.resolve(waiter, events[0].value)
                continue
            self._dispatch(events)

    def _claim_write(self, proto: ClientProtocol) -> tuple[bytes, socket.socket | None] | None:
        """Under the lock: who writes what the core wants sent, and how. The one place that
        decides whether bytes may be written without the lock:

        * nobody now, if there is nothing to write or another thread is writing (it takes these
          bytes too before it stops);
        * this thread, here, under the lock, for a TLS socket: OpenSSL does not support a
          write beside a read on one connection (its reads are under the lock too);
        * otherwise this thread becomes the writing thread: it gets the bytes and the socket
          they are for, to pass to `_write_claimed`, which writes them without the lock."""
        if self._writer is not None or not proto.has_data_to_send:
            return None
        if self._tls:
            self._process(proto)
            return None
        self._writer = _get_ident()
        sock = self._writing_sock = self._sock
        return proto.data_to_send(), sock

    def _write_claimed(
        self, proto: ClientProtocol, data: bytes, sock: socket.socket | None
    ) -> None:
        """As the writing thread, without the lock: write, then whatever other threads queued
        meanwhile, until the core has nothing more; several threads' requests leave in one
        write. The lock is only taken between writes, so replies are read meanwhile. Bytes
        for another socket than the one claimed (after a reconnection) are claimed again
        (`_claim_write`): for a TLS socket, within a mixed pool, they are written under the
        lock."""
        lock = self._lock
        try:
            while True:
                if sock is not None:
                    try:
                        _write(sock, data)
                    except OSError as exc:
                        with lock:
                            if self._sock is sock:
                                self._done_writing(sock)
                                proto.connection_lost(exc, self._now())
                                self._process(proto)
                                return
                        # That connection was dropped meanwhile; its bytes went with it.
                with lock:
                    if sock is self._sock:  # still the connection's socket: the claim goes on
                        if not proto.has_data_to_send:  # the usual end
                            self._writer = self._writing_sock = None
                            return
                        data = proto.data_to_send()
                        continue
                    # A new connection (or none): claimed again, as for a first write.
                    self._done_writing(sock)
                    claimed = self._claim_write(proto)
                if claimed is None:
                    return
                data, sock = claimed
        except BaseException:
            with lock:
                self._interrupted_writer(proto)
            raise

    def _done_writing(self, sock: socket.socket | None) -> None:
        """Under the lock: the writing thread stops; ``sock``, the socket it wrote, is closed
        now if it was dropped meanwhile (`_close_if_unused`)."""
        self._writer = None
        self._writing_sock = None
        if sock is not None and sock is not self._sock:
            self._close_if_unused(sock)

    def _interrupted_writer(self, proto: ClientProtocol) -> None:
        """Under the lock, when a thread is interrupted (KeyboardInterrupt, at any step): if it
        is the writing thread, the bytes it took from the core (other threads' requests too)
        may be lost or cut, so their connection is given up (nothing is sent again), and the
        writing is free for another thread."""
        if self._writer != _get_ident():
            return
        sock = self._writing_sock
        self._done_writing(sock)
        if sock is not None and self._sock is sock:
            proto.connection_lost(None, self._now())
            self._process(proto)

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
        while not self._pause(stop, interval):
            with self._lock:
                if proto.state is State.CLOSED:
                    return
                if self._role.held:
                    continue
                self._expire(proto)
                if proto.state is State.OPEN:
                    self._poll(proto)

    def _pause(self, stop: threading.Event, interval: float) -> bool:
        """The keepalive thread's wait between checks, on the client's clock (it follows a
        VirtualClock, never moves it). True once the client is closed."""
        clock = self._clock
        if clock is None:
            return stop.wait(interval)
        deadline = clock.current_time() + interval
        tick = self._keepalive_tick
        while not stop.is_set() and clock.current_time() < deadline:
            tick.clear()
            clock.wait(deadline - clock.current_time(), tick.wait, tick.set, drive=False)
        return stop.is_set()

    # -- the core's events ---------------------------------------------------------------------

    def _resolve(self, request_id: int, value: Any) -> None:
        waiter = self._waiters.pop(request_id, None)
        if waiter is not None:
            self._role.resolve(waiter, value)

    def _reject(self, request_id: int, error: BaseException) -> None:
        waiter = self._waiters.pop(request_id, None)
        if waiter is not None:
            self._role.reject(waiter, error)

    def _connected(self, event: Connected) -> None:
        self._role.wake_all()

    def _connection_lost(self, event: ConnectionLost) -> None:
        self._drop_socket()
        self._role.wake_all()

    def _closed(self) -> None:
        self._drop_socket()
        self._release_waker()
        self._stop_keepalive.set()
        self._keepalive_tick.set()
        self._role.wake_all()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        self._poller = None
        self._tls = False
        if sock is not None:
            # shutdown() first: it wakes a thread blocked in recv() on this socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self._close_if_unused(sock)  # or the last thread using it without the lock will
