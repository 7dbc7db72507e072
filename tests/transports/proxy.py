"""A loopback TCP proxy for fault injection between a client and the embedded server.

It runs its own asyncio event loop on a background thread, so tests of any flavour (asyncio,
trio, threads) can drive it with plain method calls, which return once the proxy has acted.

Per accepted connection it opens one upstream connection and pumps bytes both ways. It can:

* ``kill()``: abort every connection, both directions, at once (mid-pipeline);
* ``stall()`` / ``resume()``: stop / restart forwarding server->client (sockets stay open;
  what the server sent meanwhile is held, then delivered on resume);
* ``cut_after(n)``: forward only ``n`` more server->client bytes, then abort (half frames);
* ``close_clients()``: close every connection cleanly (FIN on both sides);
* ``mode = "refuse"``: accept TCP, then close at once; ``mode = "blackhole"``: accept and never
  answer (the WebSocket upgrade never completes); ``mode = "respond"``: answer the upgrade
  request with ``response`` (raw bytes), then close;
* ``inject(data)``: write raw bytes to every client, between two frames;
* terminate TLS on the client side (``tls=`` a server SSLContext) and forward plaintext.

It watches the WebSocket frames going through (``frames``) and counts bytes and connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

C2S = "c2s"
S2C = "s2c"

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


@dataclass(frozen=True)
class Frame:
    direction: str
    opcode: int
    payload: bytes
    at: float
    conn: int

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")


class FrameParser:
    """Follows one direction of a WebSocket connection: the HTTP head, then frames."""

    def __init__(self, direction: str, conn: int, sink: Callable[[Frame], None]) -> None:
        self.direction = direction
        self.conn = conn
        self.sink = sink
        self.buffer = bytearray()
        self.in_head = True

    @property
    def at_boundary(self) -> bool:
        return not self.in_head and not self.buffer

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if self.in_head:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[: end + 4]
            self.in_head = False
        while True:
            frame = self._one()
            if frame is None:
                return
            self.sink(frame)

    def _one(self) -> Frame | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        opcode = buf[0] & 0x0F
        masked = bool(buf[1] & 0x80)
        length = buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length = int.from_bytes(buf[2:4], "big")
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length = int.from_bytes(buf[2:10], "big")
            pos = 10
        mask = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            mask = bytes(buf[pos : pos + 4])
            pos += 4
        if len(buf) < pos + length:
            return None
        payload = bytes(buf[pos : pos + length])
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        del buf[: pos + length]
        return Frame(self.direction, opcode, payload, time.monotonic(), self.conn)


def text_frame(text: str | bytes) -> bytes:
    """An unmasked (server->client) text frame holding ``text``."""
    payload = text.encode() if isinstance(text, str) else text
    head = bytes([0x80 | OP_TEXT])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + len(payload).to_bytes(2, "big")
    else:
        head += bytes([127]) + len(payload).to_bytes(8, "big")
    return head + payload


@dataclass
class _Pair:
    number: int
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    parsers: dict[str, FrameParser] = field(default_factory=dict)
    dead: bool = False


class Proxy:
    """``with Proxy(("127.0.0.1", port)) as proxy: proxy.url``"""

    def __init__(
        self,
        target: tuple[str, int] | None,
        *,
        tls: ssl.SSLContext | None = None,
        mode: str = "forward",
        host: str = "127.0.0.1",
    ) -> None:
        self.target = target
        self.tls = tls
        self.mode = mode
        self.host = host
        self.port = 0
        self.response = b""
        """What ``mode = "respond"`` answers to the upgrade request."""
        self.accepted: list[float] = []
        self.frames: list[Frame] = []
        self.bytes: dict[str, int] = {C2S: 0, S2C: 0}
        self._pairs: dict[int, _Pair] = {}
        self._transports: list[asyncio.BaseTransport] = []  # every one, to close on stop
        self._budget: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._gate: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None

    # -- life cycle ------------------------------------------------------------------------

    @staticmethod
    def for_url(url: str, **options: Any) -> Proxy:
        """A proxy to the server at ``ws://host:port/``."""
        hostport = url.split("://", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        return Proxy((host, int(port)), **options)

    def start(self) -> Proxy:
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        try:
            self._gate = asyncio.Event()
            self._gate.set()
            self._stopped = asyncio.Event()
            extra: dict[str, Any] = {"ssl_handshake_timeout": 5} if self.tls else {}
            self._server = await asyncio.start_server(
                self._accept, self.host, 0, ssl=self.tls, **extra
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        self._server.close()
        for pair in list(self._pairs.values()):
            self._abort(pair)
        await self._server.wait_closed()
        tasks = [task for pair in self._pairs.values() for task in pair.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pair in self._pairs.values():  # anything closed cleanly but not yet gone
            self._abort(pair)
        for _ in range(3):  # let the transports finish closing their sockets
            await asyncio.sleep(0.01)
        # A connection accepted as the proxy stopped may have a handler that never ran (or ran
        # after the aborts above): close every transport the proxy ever had, so none is left
        # for the garbage collector to warn about during a later test.
        for transport in self._transports:
            if not transport.is_closing():
                transport.abort()
        await asyncio.sleep(0)

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/"

    def url_for(self, host: str) -> str:
        """The proxy's URL under another host name (e.g. ``localhost``)."""
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}/"

    # -- control from any thread -----------------------------------------------------------

    def _call(self, function: Callable[[], Any]) -> Any:
        loop = self._loop
        assert loop is not None

        async def run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    def stall(self) -> None:
        """Stop forwarding server->client; data read from the server meanwhile is held."""
        assert self._gate is not None
        self._call(self._gate.clear)

    def resume(self) -> None:
        assert self._gate is not None
        self._call(self._gate.set)

    def kill(self) -> None:
        """Abort every connection, both directions (held data is discarded)."""

        def kill_all() -> None:
            for pair in list(self._pairs.values()):
                self._abort(pair)

        self._call(kill_all)

    def close_clients(self) -> None:
        """Close every connection cleanly: FIN to the client and to the server."""

        def close_all() -> None:
            for pair in list(self._pairs.values()):
                pair.dead = True
                pair.client.close()
                if pair.upstream is not None:
                    pair.upstream.close()

        self._call(close_all)

    def cut_after(self, nbytes: int) -> None:
        """Forward only ``nbytes`` more server->client bytes, then abort the connection."""

        def arm() -> None:
            self._budget = nbytes

        self._call(arm)

    def inject(self, data: bytes) -> int:
        """Write ``data`` to every live client connection, between two server frames.
        Returns the number of connections written to."""

        def write() -> int:
            count = 0
            for pair in self._pairs.values():
                if pair.dead:
                    continue
                parser = pair.parsers.get(S2C)
                assert parser is not None and parser.at_boundary, "not at a frame boundary"
                pair.client.write(data)
                self.bytes[S2C] += len(data)
                count += 1
            return count

        return int(self._call(write))

    # -- observation -----------------------------------------------------------------------

    @property
    def live(self) -> int:
        """Connections currently open through the proxy."""
        return sum(1 for pair in list(self._pairs.values()) if not pair.dead)

    def texts(self, direction: str) -> list[str]:
        return [f.text for f in list(self.frames) if f.direction == direction and f.opcode == 1]

    def frames_of(self, direction: str, opcode: int | None = None) -> list[Frame]:
        return [
            f
            for f in list(self.frames)
            if f.direction == direction and (opcode is None or f.opcode == opcode)
        ]

    # -- the proxy itself (on its loop) ----------------------------------------------------

    def _abort(self, pair: _Pair) -> None:
        pair.dead = True
        pair.client.transport.abort()
        if pair.upstream is not None:
            pair.upstream.transport.abort()

    def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Coroutine[Any, Any, None]:
        """Called as each connection is made (before its handler task runs): its transport is
        known at once, for `_main` to close when stopping."""
        self._transports.append(writer.transport)
        return self._handle(reader, writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(time.monotonic())
        number = len(self.accepted)
        pair = _Pair(number, writer)
        self._pairs[number] = pair
        current = asyncio.current_task()
        assert current is not None
        pair.tasks.append(current)
        try:
            if self.mode == "refuse":
                pair.dead = True
                writer.transport.abort()
                return
            if self.mode == "respond":
                # Answer the upgrade request with ``self.response``, then close.
                await reader.readuntil(b"\r\n\r\n")
                writer.write(self.response)
                await writer.drain()
                writer.close()
                return
            if self.mode == "blackhole":
                while await reader.read(65536):
                    pass
                return
            assert self.target is not None
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                self._abort(pair)
                return
            self._transports.append(up_writer.transport)
            pair.upstream = up_writer
            if pair.dead:  # killed while connecting upstream
                self._abort(pair)
                return
            pair.parsers[C2S] = FrameParser(C2S, number, self.frames.append)
            pair.parsers[S2C] = FrameParser(S2C, number, self.frames.append)
            up = asyncio.ensure_future(self._pump(pair, reader, up_writer, C2S))
            down = asyncio.ensure_future(self._pump(pair, up_reader, writer, S2C))
            pair.tasks += [up, down]
            await asyncio.gather(up, down, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            self._abort(pair)
        except asyncio.CancelledError:
            self._abort(pair)  # stopping; end quietly (start_server logs cancelled handlers)
        finally:
            pair.dead = True
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _pump(
        self,
        pair: _Pair,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        gate = self._gate
        assert gate is not None
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if direction == S2C:
                    await gate.wait()
                if pair.dead:
                    return
                cut = False
                if direction == S2C and self._budget is not None:
                    data = data[: self._budget]
                    self._budget -= len(data)
                    if self._budget == 0:
                        self._budget = None
                        cut = True
                self.bytes[direction] += len(data)
                pair.parsers[direction].feed(data)
                writer.write(data)
                if cut:
                    # The partial frame reaches the client, then a clean end of stream; the
                    # server side is aborted.
                    pair.dead = True
                    writer.close()
                    if pair.upstream is not None:
                        pair.upstream.transport.abort()
                    return
                await writer.drain()
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            self._abort(pair)
            return
        # End of stream from one side: close both cleanly.
        if not pair.dead:
            pair.dead = True
            pair.client.close()
            if pair.upstream is not None:
                pair.upstream.close()
