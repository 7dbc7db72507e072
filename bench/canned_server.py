"""A canned-reply WebSocket server: the cheapest server a client can talk to.

It accepts any WebSocket upgrade (hand-written HTTP, no library), then answers every complete
data message from the client with one pre-encoded server frame (by default
``{"KV_SET_RSP":{"st":1}}``), without unmasking or parsing the request. Pings get pongs; a close
frame is answered with close 1000 and the socket is closed. It does nothing else, so against it
a client benchmark measures the client, not the server.

    python bench/canned_server.py [--host 127.0.0.1] [--port 0] [--reply JSON]

prints its ``ws://`` URL on the first line and serves until SIGTERM or Ctrl-C. The benchmarks
start it as a separate process so that it never shares the client's GIL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct

import _common as c
from _rawws import frame_extent, xor_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, unfragmented frame (servers never mask)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def _accept(request: bytes) -> bytes | None:
    """The 101 response for an upgrade request's head, or None if it has no key."""
    key = None
    for line in request.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if key is None:
        return None
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


class CannedConnection(asyncio.Protocol):
    def __init__(self, reply_frame: bytes) -> None:
        self.reply = reply_frame
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            response = _accept(bytes(buf[:end]))
            if response is None:
                transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                transport.close()
                return
            transport.write(response)
            del buf[: end + 4]
            self.upgraded = True
        replies = 0
        out: list[bytes] = []
        pos = 0
        while (extent := frame_extent(buf, pos)) is not None:
            start, end = extent
            b0 = buf[pos]
            opcode = b0 & 0x0F
            if opcode < 0x8:  # text, binary or continuation
                if b0 & 0x80:  # FIN: a complete message
                    replies += 1
            elif opcode == 0x9:  # ping -> pong with the same payload
                if replies:
                    out.append(self.reply * replies)
                    replies = 0
                payload = bytes(buf[start:end])
                if buf[pos + 1] & 0x80:  # masked: the key is the 4 bytes before the payload
                    payload = xor_mask(payload, bytes(buf[start - 4 : start]))
                out.append(server_frame(0xA, payload))
            elif opcode == 0x8:  # close -> close 1000, then hang up
                if replies:
                    out.append(self.reply * replies)
                out.append(server_frame(0x8, struct.pack("!H", 1000)))
                transport.write(b"".join(out))
                transport.close()
                buf.clear()
                return
            pos = end
        if replies:
            out.append(self.reply * replies)
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
        if pos:
            del buf[:pos]


async def serve(host: str, port: int, reply: str) -> None:
    reply_frame = server_frame(0x1, reply.encode())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: CannedConnection(reply_frame), host, port)
    await c.announce_until_signalled(server.sockets[0].getsockname())
    server.close()


if __name__ == "__main__":
    c.server_main(__doc__.split("\n\n")[0], serve)
