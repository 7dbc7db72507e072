"""The trio client: moves bytes between a trio stream and the `ndb_proto` core.

The connection is served by a system task (so ``open()`` needs no nursery, as in NemesisDB's
API): one reader, one writer that sends everything queued in one ``send_all``, and one timer
whose cancel scope deadline follows the core's next deadline. A caller that finds nobody writing
sends its request itself (with whatever else is queued), sparing two task switches per request;
otherwise the writer task sends it. Only one task writes at a time and each takes the core's
bytes in order, so frames leave in FIFO order. A direct write is shielded from cancellation: a
frame cut in half would break the connection for every task. A caller waits parked on its
request; cancelling it (a cancel scope, a timeout) abandons the request in the core, which keeps
its FIFO place so its reply is dropped rather than handed to the next caller.
"""

from __future__ import annotations

import contextlib
import math
import os
import ssl as _ssl
from collections.abc import Sequence
from typing import Any

import outcome
import trio

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

Session = AsyncSession
"""A session bound to its client; ``isinstance(s, ndb_proto.Session)`` holds too."""

_CONNECT_ERRORS = (OSError, trio.TooSlowError, trio.BrokenResourceError, _ssl.SSLError)
_STREAM_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, _ssl.SSLError)


def _only_cancelled(exc: BaseException) -> bool:
    """True for a Cancelled, or a group (however nested) holding nothing else: the normal end
    of the connection task when its trio.run finishes."""
    group = getattr(exc, "exceptions", None)
    if group is not None:
        return all(_only_cancelled(inner) for inner in group)
    return isinstance(exc, trio.Cancelled)


class NdbClient(ClientBase, AsyncLifecycle, AsyncCommands):
    """A NemesisDB client for trio, safe to share between tasks."""

    def _setup(self) -> None:
        self._waiters: dict[int, trio.lowlevel.Task | _BatchSlot] = {}
        self._timer_scope: trio.CancelScope | None = None
        self._write_ready = trio.Event()
        self._stream: trio.abc.Stream | None = None  # the open connection's, for direct writes
        self._fd = (
            -1
        )  # its socket's descriptor when a plain TCP stream on POSIX (see _write_direct)
        self._writing = False  # a task is in send_all: nobody else may write
        self._direct: trio.lowlevel.Task | None = None  # the caller writing directly, if any
        self._early: dict[int, outcome.Outcome[Any]] = {}  # its results that came meanwhile
        self._wake = trio.Event()
        self._changed = trio.Event()
        self._runner_done = trio.Event()
        self._runner_done.set()  # no run yet

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
        # A previous run (say, of an open() that was cancelled) must be over before its shared
        # state is reset for this one.
        await self._runner_done.wait()
        self._proto = proto
        self._runner_done = trio.Event()
        self._changed = trio.Event()
        trio.lowlevel.spawn_system_task(self._run, proto, name="ndb-trio-connection")
        try:
            # Until a connection opens, or the run ends (the core's first round failed).
            while not proto.has_connected and not self._runner_done.is_set():
                await self._changed.wait()
        except BaseException:
            self._abort(proto)
            raise
        if not proto.has_connected:
            self._abort(proto)
        return proto.has_connected

    def _abort(self, proto: ClientProtocol) -> None:
        proto.close(trio.current_time())
        self._process(proto)
        if self._proto is proto:
            self._proto = None

    async def _run(self, proto: ClientProtocol) -> None:
        """The system task: the first round of attempts, then reconnects, until closed."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timer, proto)
                await self._maintain(proto)
                nursery.cancel_scope.cancel()
        except BaseException as exc:  # a system task must never raise
            if not _only_cancelled(exc):
                logger.exception("the trio connection task failed")
        finally:
            self._runner_done.set()
            self._signal()

    async def _maintain(self, proto: ClientProtocol) -> None:
        while proto.state is not State.CLOSED:
            if proto.open_failed:
                return  # open() returns False
            plan = proto.next_connect(trio.current_time())
            if plan is None:
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            if plan.at > trio.current_time():
                with trio.move_on_at(plan.at):
                    await self._wake.wait()
                self._wake = trio.Event()
                continue
            await self._connect_and_serve(proto, plan.endpoint)

    async def _connect_and_serve(self, proto: ClientProtocol, endpoint: Endpoint) -> None:
        """One connection, from TCP connect to its end."""
        started = trio.current_time()
        context = self.options.ssl_context(endpoint)
        try:
            with trio.fail_after(self.options.connect_timeout):
                stream: trio.abc.Stream
                if endpoint.in_memory:
                    stream = await _memory.open_trio(endpoint)
                else:
                    stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
                if context is not None:
                    tls = trio.SSLStream(stream, context, server_hostname=endpoint.host)
                    try:
                        await tls.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
                    stream = tls
        except _CONNECT_ERRORS as exc:
            logger.info("could not connect to %s: %r", endpoint.uri, exc)
            proto.connection_failed(exc, trio.current_time())
            return
        if proto.state is State.CLOSED:
            await trio.aclose_forcefully(stream)
            return
        try:
            async with trio.open_nursery() as nursery:
                proto.connection_made(endpoint, trio.current_time(), started=started)
                self._process(proto)  # writes the upgrade request, arms the handshake deadline
                if os.name == "posix" and isinstance(stream, trio.SocketStream):
                    self._fd = stream.socket.fileno()
                self._stream = stream
                nursery.start_soon(self._writer, proto, stream)
                nursery.start_soon(self._reader, proto, stream, self._fd)
                while proto.state in (State.OPEN, State.CONNECTING, State.CLOSING):
                    await self._changed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._stream = None
            self._fd = -1
            # A caller may still be in a direct write: the stream is its until it returns (the
            # close frame is a courtesy, skipped then).
            closing = state_of(proto) is not State.CLOSED and not self._writing
            leftover = proto.data_to_send() if closing else b""
            if leftover:
                with trio.move_on_after(0.5):
                    with contextlib.suppress(*_STREAM_ERRORS):
                        await stream.send_all(leftover)
            await trio.aclose_forcefully(stream)

    async def _reader(self, proto: ClientProtocol, stream: trio.abc.Stream, fd: int) -> None:
        """Feeds the core what arrives. On a plain TCP socket (``fd`` >= 0) it reads the
        non-blocking descriptor itself and waits with ``wait_readable`` when it is empty, as
        trio's ``receive_some`` does, minus its layers (a third of a request's CPU)."""
        while True:
            data: bytes | bytearray
            try:
                if fd >= 0:
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        await trio.lowlevel.wait_readable(fd)
                        continue
                else:
                    data = await stream.receive_some(65536)
            except _STREAM_ERRORS as exc:
                proto.connection_lost(exc, trio.current_time())
                self._process(proto)
                return
            proto.receive_data(bytes(data), trio.current_time())
            self._process(proto)
            if not data:
                if proto.state in (State.OPEN, State.CONNECTING, State.CLOSING):
                    proto.connection_lost(None, trio.current_time())
                    self._process(proto)
                return

    async def _writer(self, proto: ClientProtocol, stream: trio.abc.Stream) -> None:
        while True:
            if self._writing or not proto.has_data_to_send:
                # A caller writing directly sets the event again if it leaves bytes behind.
                await self._write_ready.wait()
                self._write_ready = trio.Event()
                continue
            data = proto.data_to_send()
            self._writing = True
            try:
                await stream.send_all(data)
            except _STREAM_ERRORS as exc:
                proto.connection_lost(exc, trio.current_time())
                self._process(proto)
                return
            finally:
                self._writing = False

    async def _write_direct(self, proto: ClientProtocol, stream: trio.abc.Stream) -> None:
        """Send what the core has queued from the calling task (nobody else is writing).
        Shielded: cancelled halfway, it would leave a cut frame on the shared connection.
        Results of the caller's requests that arrive meanwhile wait in ``_early``."""
        self._writing = True
        self._direct = trio.lowlevel.current_task()
        try:
            data = proto.data_to_send()
            if self._fd >= 0:
                # A plain TCP socket (non-blocking under trio): try to write it all at once, as
                # trio's send_all would, without its task switch; what does not fit goes below.
                try:
                    sent = os.write(self._fd, data)
                except BlockingIOError:
                    sent = 0
                data = data[sent:]
            if data:
                with trio.CancelScope(shield=True):
                    await stream.send_all(data)
        except _STREAM_ERRORS as exc:
            if self._stream is stream:  # not a connection already given up
                proto.connection_lost(exc, trio.current_time())
                self._process(proto)
        finally:
            self._writing = False
            self._direct = None
        if proto.has_data_to_send:
            self._write_ready.set()  # queued by others meanwhile: the writer task sends it

    async def _timer(self, proto: ClientProtocol) -> None:
        while True:
            deadline = proto.next_deadline()
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            if scope.cancelled_caught:
                proto.handle_timeout(max(trio.current_time(), scope.deadline))
                self._process(proto)

    async def reconnect(self) -> None:
        """Drop the current connection (if any) and wait until a new one is open. Requests in
        flight on the old connection fail with their outcome unknown."""
        proto = self._require_protocol()
        proto.reconnect(trio.current_time())
        self._process(proto)
        self._wake.set()
        while proto.state is not State.OPEN:
            if proto.state is State.CLOSED:
                raise ClientClosedError("the client was closed", outcome_unknown=False)
            await self._changed.wait()

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> Closing:
        """Start closing now: pending requests fail with `ClientClosedError`. Await the result
        (``await client.close()``) to wait until the connection is closed."""
        proto = self._proto
        if proto is not None:
            proto.close(trio.current_time())
            self._process(proto)
        return Closing(self.wait_closed)

    async def wait_closed(self) -> None:
        """Wait until a close has finished (returns at once if the client is not open)."""
        proto = self._proto
        if proto is not None and proto.state in (State.CLOSING, State.CLOSED):
            await self._runner_done.wait()
        else:
            await trio.lowlevel.checkpoint()

    # -- requests ------------------------------------------------------------------------------

    async def _execute(self, request: Any, timeout: float | None | Default) -> Any:
        proto = self._require_protocol()
        deadline = self._deadline(timeout, trio.current_time)
        request_id = proto.submit(request, deadline)
        self._waiters[request_id] = trio.lowlevel.current_task()
        scope = self._timer_scope
        if deadline is not None and scope is not None and deadline < scope.deadline:
            scope.deadline = deadline
        stream = self._stream
        if stream is None or self._writing or proto.in_flight > 1:
            # Others are in flight too: the writer task gathers every request of this turn
            # of the scheduler in one write.
            self._write_ready.set()
        elif proto.has_data_to_send:  # alone on the wire: no reason to wait for the writer
            try:
                await self._write_direct(proto, stream)
            except BaseException:  # say, KeyboardInterrupt: nobody will park for the result
                if self._waiters.pop(request_id, None) is not None:
                    proto.abandon(request_id)
                self._early.pop(request_id, None)
                raise
            if self._early:
                early = self._early.pop(request_id, None)
                if early is not None:
                    # Cancelled meanwhile: raise, as a parked caller would (the result is lost
                    # with the cancelled call, as the reply of an abandoned request is).
                    await trio.lowlevel.checkpoint_if_cancelled()
                    return early.unwrap()

        def abort(_: Any) -> trio.lowlevel.Abort:
            if self._waiters.pop(request_id, None) is not None:
                proto.abandon(request_id)
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)

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
        """A pipeline's requests: every one's value, or its exception, in order. One task
        waits for them all (`_Batch`), woken once, when the last is resolved."""
        proto = self._require_protocol()
        deadline = self._deadline(timeout, trio.current_time)
        request_ids = proto.submit_many(requests, deadline)
        batch = _Batch(trio.lowlevel.current_task(), len(request_ids))
        for index, request_id in enumerate(request_ids):
            self._waiters[request_id] = _BatchSlot(batch, index)
        self._write_ready.set()
        scope = self._timer_scope
        if deadline is not None and scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

        def abort(_: Any) -> trio.lowlevel.Abort:
            for request_id in request_ids:
                if self._waiters.pop(request_id, None) is not None:
                    proto.abandon(request_id)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return batch.outcomes

    # -- the core's events ---------------------------------------------------------------------

    def _process(self, proto: ClientProtocol) -> None:
        """Hand out the core's events and wake the writer and the timer as needed."""
        events = proto.events()
        if events:
            self._dispatch(events)
        if proto.has_data_to_send:
            self._write_ready.set()
        scope = self._timer_scope
        if scope is not None:
            deadline = proto.next_deadline()
            if deadline is not None and deadline < scope.deadline:
                scope.deadline = deadline

    def _resolve(self, request_id: int, value: Any) -> None:
        self._settle(request_id, value, outcome.Value(value))

    def _reject(self, request_id: int, error: BaseException) -> None:
        self._settle(request_id, error, outcome.Error(error))

    def _settle(self, request_id: int, result: Any, wrapped: outcome.Outcome[Any]) -> None:
        """A request's value or exception to its waiter: a pipeline's slot takes ``result``,
        a waiting task ``wrapped``."""
        waiter = self._waiters.pop(request_id, None)
        if isinstance(waiter, _BatchSlot):
            waiter.settle(result)
        elif waiter is self._direct and waiter is not None:
            self._early[request_id] = wrapped  # it is still writing
        elif waiter is not None:
            trio.lowlevel.reschedule(waiter, wrapped)

    def _signal(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    def _connected(self, event: Connected) -> None:
        self._signal()

    def _connection_lost(self, event: ConnectionLost) -> None:
        self._wake.set()
        self._signal()

    def _closed(self) -> None:
        self._wake.set()
        self._signal()


class _Batch:
    """The outcomes of a pipeline's requests, and the one task waiting for all of them."""

    __slots__ = ("outcomes", "remaining", "task")

    def __init__(self, task: trio.lowlevel.Task, size: int) -> None:
        self.task = task
        self.remaining = size
        self.outcomes: list[Any] = [None] * size


class _BatchSlot:
    """One request of a `_Batch`: where its value (or exception) goes."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def settle(self, outcome_: Any) -> None:
        """Store the value or exception; the last one wakes the waiting task."""
        batch = self.batch
        batch.outcomes[self.index] = outcome_
        batch.remaining -= 1
        if batch.remaining == 0:
            trio.lowlevel.reschedule(batch.task, outcome.Value(None))
