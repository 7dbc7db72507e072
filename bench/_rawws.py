"""A raw WebSocket client on a blocking socket, for the limits rows of ``bench_clients.py``.

The handshake is written by hand, requests are pre-encoded masked frames, and replies are only
framed (counted), never decoded: nothing a real client could skip is done, and nothing more.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
from urllib.parse import urlsplit


def xor_mask(payload: bytes, mask: bytes) -> bytes:
    """Mask (or unmask) ``payload`` with the 4-byte ``mask`` repeated (RFC 6455 5.3)."""
    size = len(payload)
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")


def frame_extent(buf: bytearray, pos: int) -> tuple[int, int] | None:
    """Where the payload of the frame starting at ``pos`` begins and ends (after its header and
    masking key), or None while the frame is incomplete."""
    size = len(buf)
    if size - pos < 2:
        return None
    second = buf[pos + 1]
    length = second & 0x7F
    head = 2
    if length == 126:
        if size - pos < 4:
            return None
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        head = 4
    elif length == 127:
        if size - pos < 10:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        head = 10
    start = pos + head + (4 if second & 0x80 else 0)
    end = start + length
    return None if end > size else (start, end)


def masked_text_frame(payload: bytes, mask: bytes | None = None) -> bytes:
    """One client text frame (FIN, masked, as RFC 6455 requires of clients)."""
    mask = os.urandom(4) if mask is None else mask
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return header + mask + xor_mask(payload, mask)


class RawClient:
    """``RawClient(url)``: connected and upgraded; `send` bytes, `read_frames` counts replies."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 1987
        path = parts.path or "/"
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection during the handshake")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"upgrade refused: {head[:80]!r}")
        self.buffer = bytearray(rest)
        # Truly blocking (CPython polls before every send/recv on a socket with a timeout), but
        # a reply that never comes still ends the run, through the kernel's receive timeout.
        self.sock.settimeout(None)
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(timeout), 0)
        )

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frames(self, count: int) -> None:
        """Read until ``count`` complete frames have arrived (their payloads are dropped)."""
        buf = self.buffer
        recv = self.sock.recv
        while count:
            pos = 0
            while count and (extent := frame_extent(buf, pos)) is not None:
                pos = extent[1]
                count -= 1
            if pos:
                del buf[:pos]
            if count:
                chunk = recv(262144)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                buf += chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a masked close frame with no payload
            self.sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))
        self.sock.close()
