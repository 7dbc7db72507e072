"""Building outgoing WebSocket data frames and (un)masking them (RFC 6455 §5.2, §5.3).

The handshake and control frames go through wsproto; incoming frames are delimited by
`ndb_proto.channel`. Outgoing text frames are built here because they are on every request's
path and wsproto's per-message route (an event object, a str round trip, a generic serialiser
and masker) costs 3-4x more (``bench/bench_core.py``). A client masks what it sends with a fresh
random key; a server does not mask.
"""

from __future__ import annotations

import os
import struct

_urandom = os.urandom
_from_bytes = int.from_bytes
_HEAD16 = struct.Struct("!BBH").pack
_HEAD64 = struct.Struct("!BBQ").pack

# The frame header's bits (RFC 6455 §5.2). First byte: FIN and the opcode; second byte: MASKED
# and a 7-bit length, where LENGTH_16 / LENGTH_64 say a 16- or 64-bit length follows.
FIN = 0x80
OPCODE_BITS = 0x0F
OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
MASKED = 0x80
LENGTH_BITS = 0x7F
LENGTH_16 = 126
LENGTH_64 = 127


def text_frame(payload: bytes, *, mask: bool) -> bytes:
    """One unfragmented text frame carrying ``payload`` (UTF-8 bytes)."""
    size = len(payload)
    first = FIN | OP_TEXT
    flag = MASKED if mask else 0
    if size < LENGTH_16:
        head = bytes((first, flag | size))
    elif size < 65536:
        head = _HEAD16(first, flag | LENGTH_16, size)
    else:
        head = _HEAD64(first, flag | LENGTH_64, size)
    if not mask:
        return head + payload
    key = _mask_key()
    return head + key + unmask(payload, key)


class _MaskKeys:
    """Fresh masking keys from the system's strong random source, read 1024 at a time: a key
    per frame without a system call per frame (RFC 6455 §5.3 asks for unpredictable keys, not
    for a call each)."""

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def __call__(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = _urandom(4096)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


_mask_key = _MaskKeys()


def unmask(payload: bytes, key: bytes | bytearray) -> bytes:
    """Undo (or apply) a client's masking: XOR with the 4-byte ``key`` repeated."""
    size = len(payload)
    if not size:
        return payload
    repeats = size // 4 + 1
    stream = _from_bytes(bytes(key) * repeats, "big") >> (8 * (4 * repeats - size))
    return (_from_bytes(payload, "big") ^ stream).to_bytes(size, "big")
