"""The "echo baseline" server of ``bench_server.py``: a trivial server on the ``websockets``
library (asyncio) that answers each text message with one constant text (by default
``{"KV_SET_RSP":{"st":1}}``, so that our client, which checks reply names, accepts it).

It is not a literal echo: echoing the request back would hand ``KV_SET`` to a client expecting
``KV_SET_RSP``. It does what an echo server does (read a message, write a message) with the
cheapest reply, which is what the embedded server is compared with.

    python bench/ws_const_server.py [--host 127.0.0.1] [--port 0] [--reply JSON]

prints its ``ws://`` URL on the first line and serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import _common as c
from websockets.asyncio.server import ServerConnection, serve


async def run(host: str, port: int, reply: str) -> None:
    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            await ws.send(reply)

    # No compression (NemesisDB never negotiates it) and no size limit on messages.
    async with serve(handler, host, port, compression=None, max_size=None) as server:
        await c.announce_until_signalled(next(iter(server.sockets)).getsockname())


if __name__ == "__main__":
    c.server_main(__doc__.split("\n\n")[0], run)
