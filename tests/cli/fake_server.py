"""A loopback WebSocket server whose replies a test decides, for the faults the embedded server
never makes: a reply that cannot be read, no reply at all, a dropped connection, replies held
back until several requests have arrived.

It answers with the embedded server's `Engine` (so replies are right unless the test says
otherwise) and runs its own event loop on a thread, so a test drives ``ndb`` as a subprocess
next to it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from ndb_server.engine import Engine

DROP = object()
"""What a `Policy` returns to abort the connection instead of replying."""

Policy = Callable[[int, str, str], "str | None | object"]
"""(request number from 1, request text, the engine's reply) -> the reply to send, None to send
nothing, or `DROP`."""


def honest(number: int, request: str, reply: str) -> str | None | object:
    del number, request
    return reply


class FakeServer:
    """``with FakeServer(policy) as server: server.url``.

    With ``hold_until=N`` no reply is written until N requests have arrived on the connection;
    if they do not arrive within ``hold_timeout`` seconds the connection is aborted instead (so
    a client that does not pipeline fails, rather than hangs)."""

    def __init__(
        self, policy: Policy = honest, *, hold_until: int = 0, hold_timeout: float = 30.0
    ) -> None:
        self.policy = policy
        self.hold_until = hold_until
        self.hold_timeout = hold_timeout
        self.requests: list[str] = []
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def drop_all(self) -> None:
        """Abort every open connection (as a server that goes away does)."""
        assert self._loop is not None
        for writer in list(self._writers):
            self._loop.call_soon_threadsafe(writer.transport.abort)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        ws = WSConnection(ConnectionType.SERVER)
        engine = Engine(clock=time.monotonic)
        held: list[str] = []
        arrived = 0
        deadline = time.monotonic() + self.hold_timeout
        try:
            while True:
                wait = max(0.0, deadline - time.monotonic()) if held else None
                try:
                    data = await asyncio.wait_for(reader.read(65536), wait)
                except TimeoutError:
                    writer.transport.abort()  # never got the requests to release the replies
                    return
                if not data:
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        writer.write(ws.send(AcceptConnection()))
                    elif isinstance(event, CloseConnection):
                        writer.write(ws.send(event.response()))
                        return
                    elif isinstance(event, TextMessage):
                        arrived += 1
                        self.requests.append(event.data)
                        answer = self.policy(arrived, event.data, engine.handle_text(event.data))
                        if answer is DROP:
                            writer.transport.abort()
                            return
                        if isinstance(answer, str):
                            held.append(answer)
                if held and arrived >= self.hold_until:
                    for text in held:
                        writer.write(ws.send(TextMessage(text)))
                    held.clear()
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
            writer.close()
