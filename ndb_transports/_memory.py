"""The byte stream behind ``memory://name/`` URLs: a client talks to an in-process server
(`ndb_server.MemoryServer`) with the same WebSocket bytes it would write to a socket, but no
socket, port or thread carries them.

A server registers an *acceptor* under its name; `connect` asks it for the server's end of a new
connection and returns the client's end, a `MemoryStream`. Bytes the client writes are handed to
the server at once, in the writing thread (so a request's reply is usually waiting before the
write returns); bytes the server sends are buffered in the stream until the client reads them,
and the flavour is woken through the ``wake`` callable it set. The three flavours each wrap the
stream in what their I/O code already expects: a socket object for the blocking client
(`open_socket`), an `asyncio.Transport` (`open_asyncio`) and a `trio.abc.Stream` (`open_trio`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import socket
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ndb_proto.uri import Endpoint

if TYPE_CHECKING:
    import trio


class ServerEnd(Protocol):
    """The server's side of one in-memory connection."""

    def receive(self, data: bytes) -> None:
        """Bytes from the client (``b""``: the client closed its end). Raises BrokenPipeError
        once the server has ended the connection."""

    def follows(self, clock: object) -> bool:
        """Whether the server's time is ``clock``, the trio run's clock: then the client's
        reader wakes the server at `next_due`, in that run, for its idle ping or drop."""

    def next_due(self) -> float | None:
        """The time (on the followed clock) of the connection's next idle ping or drop."""

    def catch_up(self) -> None:
        """Run what fell due on the followed clock."""


Acceptor = Callable[["MemoryStream"], ServerEnd]

_servers: dict[str, weakref.WeakMethod[Acceptor]] = {}
_registry_lock = threading.Lock()


def register(name: str, acceptor: Acceptor) -> None:
    """Serve ``memory://name/`` with ``acceptor``, a bound method of the server: held weakly,
    so a server that is garbage-collected stops serving without `unregister`."""
    with _registry_lock:
        held = _servers.get(name)
        if held is not None and held() is not None:
            raise ValueError(f"a memory server named {name!r} is already running")
        _servers[name] = weakref.WeakMethod(acceptor)


def unregister(name: str) -> None:
    with _registry_lock:
        _servers.pop(name, None)


def connect(endpoint: Endpoint) -> MemoryStream:
    """A new connection to the server named by ``endpoint``; ConnectionRefusedError (as for a
    port nobody listens on) when no such server runs."""
    with _registry_lock:
        held = _servers.get(endpoint.host)
        acceptor = held() if held is not None else None
    if acceptor is None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"no memory server {endpoint.host!r}")
    stream = MemoryStream()
    stream.server = acceptor(stream)
    return stream


class MemoryStream:
    """One connection's client end: what the server sent and the client has not read yet."""

    def __init__(self) -> None:
        self.server: ServerEnd | None = None
        self._lock = threading.Lock()
        self._inbound = bytearray()
        self._eof = False  # the server ended the connection
        self._closed = False  # the client closed its end
        self.wake: Callable[[], None] = lambda: None

    # -- the server's side -----------------------------------------------------------------------
    @property
    def unread(self) -> int:
        """Bytes sent by the server and not read yet (what the server counts as backpressure)."""
        return len(self._inbound)

    def deliver(self, data: bytes) -> None:
        with self._lock:
            if self._closed or self._eof:
                return
            self._inbound += data
        self.wake()

    def end(self) -> None:
        """The server dropped or closed the connection: the client reads EOF after the data."""
        with self._lock:
            if self._eof:
                return
            self._eof = True
        self.wake()

    # -- the client's side -----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Hand ``data`` to the server (OSError once either side has ended the connection)."""
        if self._closed:
            raise OSError(errno.EBADF, "the memory stream is closed")
        if self._eof:
            raise BrokenPipeError(errno.EPIPE, "the memory server ended the connection")
        assert self.server is not None
        self.server.receive(data if type(data) is bytes else bytes(data))

    def read(self, max_bytes: int) -> bytes | None:
        """Up to ``max_bytes`` of what arrived; ``b""`` at EOF; None when nothing is there yet."""
        with self._lock:
            inbound = self._inbound
            if inbound:
                if len(inbound) <= max_bytes:  # the usual case: everything, in one copy
                    data = bytes(inbound)
                    inbound.clear()
                else:
                    data = bytes(inbound[:max_bytes])
                    del inbound[:max_bytes]
                return data
            if self._eof or self._closed:
                return b""
            return None

    def close(self) -> None:
        """Close the client's end; the server sees EOF (a connection gone without a close
        frame, unless the client sent one before)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._inbound.clear()
            ended = self._eof
        if not ended and self.server is not None:
            with contextlib.suppress(OSError):
                self.server.receive(b"")


# -- the blocking client -------------------------------------------------------------------------


class MemorySocket(socket.socket):
    """A socket object for the blocking client: its file descriptor is one end of a local
    socket pair used only as a doorbell (readable while the stream has data or EOF), so the
    client's poll() works unchanged; ``send``/``recv`` move the bytes through the stream."""

    def __init__(self, stream: MemoryStream) -> None:
        bell, self._ringer = socket.socketpair()
        super().__init__(bell.family, bell.type, bell.proto, fileno=bell.detach())
        self._ringer.setblocking(False)
        self._stream = stream
        self._rung = False
        self._bell_lock = threading.Lock()
        stream.wake = self._ring

    def _ring(self) -> None:
        with self._bell_lock:
            if not self._rung and self._ringer.fileno() >= 0:
                self._rung = True
                with contextlib.suppress(OSError):
                    self._ringer.send(b"\0")

    def send(self, data: Any, flags: int = 0) -> int:
        self._stream.write(bytes(data))  # a copy: the caller may reuse its buffer
        return len(data)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        with self._bell_lock:
            data = self._stream.read(bufsize)
            if data is None:
                raise BlockingIOError(errno.EAGAIN, "no data yet")
            if data and self._stream.unread == 0 and self._rung:
                # Emptied: silence the doorbell until the server delivers again.
                with contextlib.suppress(OSError):
                    super().recv(64)
                self._rung = False
            return data

    def setsockopt(self, *args: Any) -> None:
        """Socket options mean nothing here (no TCP)."""

    def shutdown(self, how: int) -> None:
        self._stream.close()
        super().shutdown(how)

    def close(self) -> None:
        self._stream.close()
        with self._bell_lock:
            self._ringer.close()
        super().close()


def open_socket(endpoint: Endpoint) -> MemorySocket:
    return MemorySocket(connect(endpoint))


# -- asyncio -------------------------------------------------------------------------------------


class _MemoryTransport(asyncio.Transport):
    def __init__(
        self, stream: MemoryStream, protocol: asyncio.Protocol, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__()
        self._stream = stream
        self._protocol = protocol
        self._loop = loop
        self._closing = False
        self._scheduled = False
        self._schedule_lock = threading.Lock()
        stream.wake = self._wake

    def _wake(self) -> None:
        with self._schedule_lock:
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody will read
            self._loop.call_soon_threadsafe(self._pump)

    def _pump(self) -> None:
        with self._schedule_lock:
            self._scheduled = False
        while not self._closing:
            data = self._stream.read(65536)
            if data is None:
                return
            if not data:
                self._protocol.eof_received()
                self._lose(None)
                return
            self._protocol.data_received(data)

    def _lose(self, exc: Exception | None) -> None:
        if not self._closing:
            self._closing = True
            self._stream.close()
            self._loop.call_soon(self._protocol.connection_lost, exc)

    def write(self, data: Any) -> None:
        if self._closing:
            return
        try:
            self._stream.write(bytes(data))
        except OSError as exc:
            self._lose(exc)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._lose(None)

    def abort(self) -> None:
        self._lose(None)


async def open_asyncio(
    endpoint: Endpoint, protocol_factory: Callable[[], asyncio.Protocol]
) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """Like ``loop.create_connection`` for a ``memory://`` endpoint."""
    stream = connect(endpoint)
    protocol = protocol_factory()
    transport = _MemoryTransport(stream, protocol, asyncio.get_running_loop())
    protocol.connection_made(transport)
    transport._wake()  # anything the server sent on accepting
    return transport, protocol


# -- trio ----------------------------------------------------------------------------------------


async def open_trio(endpoint: Endpoint) -> trio.abc.Stream:
    """Like ``trio.open_tcp_stream`` for a ``memory://`` endpoint."""
    import trio

    class MemoryTrioStream(trio.abc.Stream):
        def __init__(self, stream: MemoryStream) -> None:
            self._stream = stream
            self._token = trio.lowlevel.current_trio_token()
            self._arrived = trio.Event()
            stream.wake = self._wake
            server = stream.server
            # A server following this run's clock is woken by the reader at its next deadline.
            self._follows = server is not None and server.follows(trio.lowlevel.current_clock())

        def _wake(self) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._arrived.set)

        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            await trio.lowlevel.checkpoint()
            try:
                self._stream.write(bytes(data))
            except OSError as exc:
                raise trio.BrokenResourceError from exc

        async def wait_send_all_might_not_block(self) -> None:
            await trio.lowlevel.checkpoint()

        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            while True:
                data = self._stream.read(65536 if max_bytes is None else max_bytes)
                if data is not None:
                    await trio.lowlevel.checkpoint()
                    return data
                if self._follows:
                    await self._wait_or_wake_the_server()
                else:
                    await self._arrived.wait()
                self._arrived = trio.Event()

        async def _wait_or_wake_the_server(self) -> None:
            server = self._stream.server
            assert server is not None
            due = server.next_due()
            with trio.move_on_at(math.inf if due is None else due):
                await self._arrived.wait()
            server.catch_up()

        async def aclose(self) -> None:
            self._stream.close()
            await trio.lowlevel.checkpoint()

    await trio.lowlevel.checkpoint()
    return MemoryTrioStream(connect(endpoint))
