"""The asyncio client: moves bytes between an asyncio transport and the `ndb_proto` core.

Requests from any number of tasks are pipelined over one connection. A caller alone (no other
caller waiting) writes its request at once, before it first waits; callers that find others
waiting are batched: every request submitted during one turn of the event loop goes out in a
single ``transport.write`` at the end of that turn.
Replies are dispatched straight from ``data_received``. Cancelling a caller abandons its
request in the core, which keeps its place so its reply is dropped rather than given to the
next caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as _ssl
from collections.abc import Sequence
from typing import Any, TypeVar

from ndb_proto.client import ClientProtocol, State
from ndb_proto.errors import ClientClosedError, ResponseError
from ndb_proto.events import Connected, ConnectionLost
from ndb_proto.uri import Endpoint
from ndb_transports import _memory
from ndb_transports._base import AsyncLifecycle, ClientBase, Closing, logger, state_of
from ndb_transports._options import Default
from ndb_transports._pipeline import AsyncPipeline
from ndb_transports._surface_async import AsyncCommands, AsyncSession

__all__ = ["AsyncPipeline", "NdbClient", "ResponseError", "Session"]

T = TypeVar("T")
Session = AsyncSession
"""A session bound to its client; ``isinstance(s, ndb_proto.Session)`` holds too."""

_CONNECT_ERRORS = (OSError, asyncio.TimeoutError, _ssl.SSLError)


class _SocketProtocol(asyncio.Protocol):
    """Forwards one socket's callbacks to the client, and ignores them once it is stale."""

    def __init__(self, client: NdbClient, endpoint: Endpoint) -> None:
        self.client = client
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.started = asyncio.get_running_loop().time()
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.client._socket_opened(self, transport)

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client._socket is self:
            client._receive(data)

    def eof_received(self) -> bool:
        if self.client._socket is self:
            self.client._receive(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.gone.done():
            self.gone.set_result(None)
        if self.client._socket is self:
            self.client._socket_lost(exc)


class NdbClient(ClientBase, AsyncLifecycle, AsyncCommands):
    """A NemesisDB client for asyncio, safe to share between tasks."""

    def _setup(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._socket: _SocketProtocol | None = None
        self._transport: asyncio.Transport | None = None  # the current socket's, None without one
        self._flush_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._runner: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._attempt: asyncio.Future[bool] | None = None
        self._dropped: _SocketProtocol | None = None  # the last socket closed
        self._changed = asyncio.Event()  # replaced on every connect/lose/close; see _signal

    # -- opening -------------------------------------------------------------------------------

    async def open(self, uri: str) -> bool:
        """Connect to ``uri`` (``ws://`` or ``wss://``). Returns False when it cannot connect;
        raises ValueError for an empty or malformed URI."""
        return await self.connect_pool([uri])

    async def connect_pool(self, uris: Sequence[str]) -> bool:
        """Connect to the first reachable server of ``uris``; later reconnects rotate through
        them. Returns False when none could be reached."""
        proto = self._new_protocol(uris)
        if self._proto is not None:
            await self.close_and_wait()
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._proto = proto
        self._wake = asyncio.Event()
        try:
            # The first round: the core says when every server has been tried once.
            while not proto.open_failed and (plan := proto.next_connect(loop.time())):
                if await self._connect(proto, plan.endpoint):
                    self._runner = loop.create_task(self._maintain(proto))
                    return True
        except BaseException:
            self._abort(proto)
            raise
        self._abort(proto)
        return False

    def _abort(self, proto: ClientProtocol) -> None:
        proto.close(self._now())
        self._process(self._proto)
        self._drop_socket()
        if self._proto is proto:
            self._proto = None

    async def _connect(self, proto: ClientProtocol, endpoint: Endpoint) -> bool:
        """One attempt: TCP, TLS, then the WebSocket handshake. True once open."""
        loop = self._loop
        assert loop is not None
        context = self.options.ssl_context(endpoint)
        attempt: asyncio.Future[bool] = loop.create_future()
        self._attempt = attempt
        try:
            await asyncio.wait_for(
                _memory.open_asyncio(endpoint, lambda: _SocketProtocol(self, endpoint))
                if endpoint.in_memory
                else loop.create_connection(
                    lambda: _SocketProtocol(self, endpoint),
                    endpoint.host,
                    endpoint.port,
                    ssl=context,
                    server_hostname=endpoint.host if context is not None else None,
                ),
                self.options.connect_timeout,
            )
        except _CONNECT_ERRORS as exc:
            logger.info("could not connect to %s: %r", endpoint.uri, exc)
            if proto.state in (State.NEW, State.IDLE):
                proto.connection_failed(exc, loop.time())
            self._attempt = None
            return False
        try:
            return await attempt
        finally:
            self._attempt = None

    async def _maintain(self, proto: ClientProtocol) -> None:
        """Reconnects after a lost connection, for as long as the core wants it."""
        loop = self._loop
        assert loop is not None
        while proto.state is not State.CLOSED:
            plan = None
            if proto.state in (State.IDLE, State.NEW):
                plan = proto.next_connect(loop.time())
            if plan is None:
                await self._wake.wait()
                self._wake.clear()
                continue
            delay = plan.at - loop.time()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
                continue  # re-plan: a close() may have happened meanwhile
            await self._connect(proto, plan.endpoint)

    async def reconnect(self) -> None:
        """Drop the current connection (if any) and wait until a new one is open. Requests in
        flight on the old connection fail with their outcome unknown."""
        proto = self._require_protocol()
        proto.reconnect(self._now())
        self._process(proto)
        self._wake.set()
        while proto.state is not State.OPEN:
            if proto.state is State.CLOSED:
                raise ClientClosedError("the client was closed", outcome_unknown=False)
            await self._changed.wait()

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the client was opened on."""
        if self._loop is None:
            return asyncio.get_event_loop()
        return self._loop

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> Closing:
        """Start closing now: pending requests fail with `ClientClosedError`. Await the result
        (``await client.close()``) to wait until the connection is closed."""
        proto = self._proto
        if proto is not None:
            proto.close(self._now())
            self._process(proto)
        return Closing(self.wait_closed)

    async def wait_closed(self) -> None:
        """Wait until a close has finished (returns at once if the client is not open)."""
        proto = self._proto
        while proto is not None and state_of(proto) is State.CLOSING:
            await self._changed.wait()  # set on Closed, among others
        runner = self._runner
        if runner is not None and proto is not None and proto.state is State.CLOSED:
            await asyncio.gather(runner, return_exceptions=True)
        dropped = self._dropped
        if dropped is not None and proto is not None and proto.state is State.CLOSED:
            # abort() releases the socket on the next loop turn: let it happen before returning,
            # so a loop that stops right after close() leaks nothing.
            await asyncio.wait([dropped.gone], timeout=self.options.close_timeout)

    # -- requests ------------------------------------------------------------------------------

    async def _execute(self, request: Any, timeout: float | None | Default) -> Any:
        proto = self._proto
        if proto is None:
            proto = self._require_protocol()  # raises
        loop = self._loop
        assert loop is not None
        deadline = self._deadline(timeout, loop.time)
        request_id = proto.submit(request, deadline)
        future: asyncio.Future[Any] = loop.create_future()
        waiters = self._waiters
        if not waiters:
            self._flush_now(proto)  # alone: no reason to wait a loop turn
        elif self._flush_handle is None:
            # Others are waiting too: gather every request of this loop turn in one write.
            self._flush_handle = loop.call_soon(self._flush)
        waiters[request_id] = future
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._arm_timer(proto)
        try:
            return await future
        except asyncio.CancelledError:
            if waiters.pop(request_id, None) is not None:
                proto.abandon(request_id)
            raise

    def pipeline(self) -> AsyncPipeline:
        """A pipeline: commands queued on it leave together on ``await execute()``, which
        returns their results in order (see `AsyncPipeline`)."""
        return AsyncPipeline(
            self._execute_many,
            lambda tkn: AsyncSession(self, tkn),
            self.options.max_message_size,
        )

    async def _execute_many(
        self, requests: list[Any], timeout: float | None | Default
    ) -> list[Any]:
        """A pipeline's requests: every one's value, or its exception, in order."""
        proto = self._require_protocol()
        loop = self._loop
        assert loop is not None
        deadline = self._deadline(timeout, loop.time)
        request_ids = proto.submit_many(requests, deadline)
        futures: list[asyncio.Future[Any]] = []
        for request_id in request_ids:
            future = loop.create_future()
            self._waiters[request_id] = future
            futures.append(future)
        self._flush_now(proto)  # one write for all the window takes
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._arm_timer(proto)
        try:
            await asyncio.wait(futures)
        except asyncio.CancelledError:
            for request_id in request_ids:
                if self._waiters.pop(request_id, None) is not None:
                    proto.abandon(request_id)
            raise
        return [f.exception() or f.result() for f in futures]

    def _flush(self) -> None:
        self._flush_handle = None
        if self._proto is not None:
            self._flush_now(self._proto)

    def _flush_now(self, proto: ClientProtocol) -> None:
        transport = self._transport
        if transport is not None:
            data = proto.data_to_send()
            if data:
                transport.write(data)

    # -- the core's events ---------------------------------------------------------------------

    def _now(self) -> float:
        loop = self._loop
        return loop.time() if loop is not None else 0.0

    def _socket_opened(self, socket: _SocketProtocol, transport: asyncio.Transport) -> None:
        proto = self._proto
        if proto is None or proto.state not in (State.NEW, State.IDLE):
            transport.abort()
            if self._attempt is not None and not self._attempt.done():
                self._attempt.set_result(False)
            return
        self._drop_socket()
        self._socket = socket
        self._transport = transport
        proto.connection_made(socket.endpoint, self._now(), started=socket.started)
        self._process(proto)

    def _socket_lost(self, exc: Exception | None) -> None:
        proto = self._proto
        if proto is not None:
            proto.connection_lost(exc, self._now())
            self._process(proto)
        self._socket = self._transport = None

    def _receive(self, data: bytes) -> None:
        """Bytes from the current socket, for the core; then what it has to write or hand out."""
        proto = self._proto
        assert proto is not None
        proto.receive_data(data, self._loop.time())  # type: ignore[union-attr]
        self._process(proto)

    def _process(self, proto: ClientProtocol | None) -> None:
        """Write what the core has to send, hand its events out, and move the timer earlier if
        a deadline now comes before it."""
        if proto is None:
            return
        data = proto.data_to_send()
        if data:
            transport = self._transport
            if transport is not None:
                transport.write(data)
        events = proto.events()
        if events:
            self._dispatch(events)
        self._arm_timer(proto)

    def _arm_timer(self, proto: ClientProtocol) -> None:
        deadline = proto.next_deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        loop = self._loop
        assert loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        when = self._timer_at
        self._timer = self._timer_at = None
        proto = self._proto
        if proto is not None and self._loop is not None:
            # call_at may fire a hair early; the core must see the deadline as reached.
            proto.handle_timeout(max(self._loop.time(), when or 0.0))
            self._process(proto)

    def _resolve(self, request_id: int, value: Any) -> None:
        future = self._waiters.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(value)

    def _reject(self, request_id: int, error: BaseException) -> None:
        future = self._waiters.pop(request_id, None)
        if future is not None and not future.done():
            future.set_exception(error)

    def _signal(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _connected(self, event: Connected) -> None:
        if self._attempt is not None and not self._attempt.done():
            self._attempt.set_result(True)
        self._signal()

    def _connection_lost(self, event: ConnectionLost) -> None:
        self._drop_socket()
        if self._attempt is not None and not self._attempt.done():
            self._attempt.set_result(False)
        self._wake.set()
        self._signal()

    def _closed(self) -> None:
        self._drop_socket()
        if self._attempt is not None and not self._attempt.done():
            self._attempt.set_result(False)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        self._wake.set()
        self._signal()

    def _drop_socket(self) -> None:
        """Close the socket now. The WebSocket exchange is over (or the connection is being
        given up), so a TLS close_notify, which can take up to 30 s, is not waited for."""
        socket, self._socket, self._transport = self._socket, None, None
        if socket is not None and socket.transport is not None:
            socket.transport.abort()
            self._dropped = socket
