"""The WebSocket message layer shared by the client core and the embedded server.

Both roles use it, so the framing code exists once. It delimits incoming frames and hands a
complete unfragmented text frame (the common case) straight out; wsproto validates every other
frame, and this layer puts fragmented messages back together under a size limit (wsproto has
none), answers pings, and reports the rest as small events. The fast path is ten times cheaper
than wsproto's per-frame route (``bench/bench_core.py``).

`MessageChannel.receive` returns a list whose items are either a complete text message (its UTF-8
`bytes`, kept bare so the hot path allocates nothing extra) or one of the event classes below.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError

from ndb_proto.errors import LocalProtocolError
from ndb_proto.frames import (
    FIN,
    LENGTH_16,
    LENGTH_64,
    LENGTH_BITS,
    MASKED,
    OP_BINARY,
    OP_CONTINUATION,
    OP_TEXT,
    OPCODE_BITS,
    text_frame,
    unmask,
)

ReceivedData = bytes | bytearray | memoryview
"""What a read hands the core: bytes or any buffer of them (``b""`` for the end of the stream).
Spelled out rather than left to ``bytes``: a compiled build checks argument types exactly."""

_from_bytes = int.from_bytes
_WHOLE_TEXT = FIN | OP_TEXT  # the first byte of an unfragmented text frame
_WS_OPEN = ConnectionState.OPEN  # looked up once: an Enum member costs ~0.4 µs on Python 3.11

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_DATA = 1007
CLOSE_MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True, slots=True)
class BinaryReceived:
    """A complete binary message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    payload: bytes


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer sent a close frame (``code`` as sent), or the TCP stream ended (``code`` 1006)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChannelFailed:
    """The incoming bytes broke the WebSocket protocol, or a message exceeded the size limit.

    ``code`` is the close code that describes it (1002, 1007, 1009...); ``data`` holds the bytes
    received in the chunk where the failure was found, for debugging dumps.
    """

    code: int
    reason: str
    data: bytes


ChannelEvent = bytes | BinaryReceived | PongReceived | PeerClosed | ChannelFailed
"""A complete text message is its UTF-8 bytes (not validated here: the JSON decoder does it)."""


def after_headers(http_message: bytes) -> bytes:
    """What follows an HTTP upgrade request or 101 response (neither has a body): the first
    WebSocket frames, when they arrived in the same read as the headers."""
    return http_message.partition(b"\r\n\r\n")[2]


def _utf8_length(text: str) -> int:
    # str.isascii() is O(1) in CPython, so ASCII text (the usual reply) is measured for free.
    return len(text) if text.isascii() else len(text.encode())


class MessageChannel:
    """An open WebSocket connection: bytes in, messages and events out, bytes to send."""

    def __init__(self, connection: Connection, max_message_size: int | None) -> None:
        self._ws = connection
        self._mask = connection.client
        self._masked_in = not connection.client  # a client receives unmasked frames
        self._buffer = bytearray()
        self._fragmented = False  # wsproto holds a message in progress
        self._peer_closed = False
        self._limit = max_message_size
        self._parts: list[str] = []
        self._binary_parts: list[bytes] = []
        self._size = 0
        self._outgoing = bytearray()
        self.failed = False

    @property
    def state(self) -> ConnectionState:
        return self._ws.state

    @property
    def is_open(self) -> bool:
        return self._ws.state is ConnectionState.OPEN and not self.failed

    def send_text(self, payload: bytes | str) -> None:
        """Queue one text message (its UTF-8 encoding, or a str). Data frames are built by
        `ndb_proto.frames` (masked for a client), control frames by wsproto."""
        if type(payload) is str:
            payload = payload.encode()
        if self._ws.state is not _WS_OPEN:
            raise LocalProtocolError(f"cannot send a message in state {self._ws.state.name}")
        self._outgoing += text_frame(payload, mask=self._mask)  # type: ignore[arg-type]

    def send_ping(self, payload: bytes = b"") -> None:
        self._outgoing += self._ws.send(Ping(payload))

    def send_close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start (or answer) the close handshake, if the state still allows a close frame."""
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            # 1005 (a close frame without a code) is never sent: the answer is a close frame
            # without a code too. wsproto does that for its enum member only, not for the number
            # (which is all a compiled build keeps of a code), so the member is passed here.
            if code == CLOSE_NO_STATUS:
                close = CloseConnection(CloseReason.NO_STATUS_RCVD, reason)
            else:
                close = CloseConnection(code, reason)
            self._outgoing += self._ws.send(close)

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._outgoing)

    @property
    def pending_size(self) -> int:
        """Bytes queued and not yet taken by `data_to_send`."""
        return len(self._outgoing)

    def data_to_send(self) -> bytes:
        outgoing = self._outgoing
        if not outgoing:
            return b""
        data = bytes(outgoing)
        outgoing.clear()
        return data

    def receive(self, data: ReceivedData) -> list[ChannelEvent]:
        """Feed received bytes (``b""`` for end of stream) and collect what they completed.

        Frames are delimited here. A complete, unfragmented text frame (nearly every frame a
        NemesisDB peer sends) is handed out directly; any other frame (control, fragmented,
        binary, reserved bits, wrong masking) goes whole to wsproto, which validates it. Feeding
        wsproto only complete frames keeps the two in step.
        """
        if self.failed or self._peer_closed:
            return []
        # A client's usual read: one whole, unmasked, unfragmented text frame of at most 125
        # bytes (most replies: a status, a small value) and nothing more. Its payload is handed
        # out here, as the loop below would, without its setup (a third of a small reply's CPU).
        if (
            type(data) is bytes
            and not self._masked_in
            and not self._fragmented
            and not self._buffer
            and len(data) >= 2
            and data[0] == _WHOLE_TEXT
            and data[1] < LENGTH_16  # a 7-bit length, and the mask bit clear
            and len(data) == data[1] + 2
            and (self._limit is None or data[1] <= self._limit)
        ):
            return [data[2:]]
        out: list[ChannelEvent] = []
        if not data:
            self._ws.receive_data(None)
            return self._collect(out, b"", eof=True)
        # Frames are read from ``data`` itself when nothing was left over from the last chunk
        # (the usual case), and from the buffer otherwise: one copy per message, not three.
        buffer = self._buffer
        if buffer or type(data) is not bytes:
            buffer += data
            source: bytes | bytearray = buffer
        else:
            source = data
        size = len(source)
        pos = 0
        limit = self._limit
        # The header bits, as locals: this loop runs once per frame. ``whole_text`` is the first
        # byte of the fast path's frame, an unfragmented text message.
        whole_text = FIN | OP_TEXT
        length_bits, length_16, length_64, mask_bit = LENGTH_BITS, LENGTH_16, LENGTH_64, MASKED
        while size - pos >= 2:
            first = source[pos]
            second = source[pos + 1]
            length = second & length_bits
            head = 2
            if length == length_16:
                if size - pos < 4:
                    break
                length = _from_bytes(source[pos + 2 : pos + 4], "big")
                head = 4
                if length < length_16:  # RFC 6455 5.2: the shortest length encoding is required
                    return self._fail(out, CLOSE_PROTOCOL_ERROR, bytes(source[pos : pos + head]))
            elif length == length_64:
                if size - pos < 10:
                    break
                length = _from_bytes(source[pos + 2 : pos + 10], "big")
                head = 10
                if length < 65536:
                    return self._fail(out, CLOSE_PROTOCOL_ERROR, bytes(source[pos : pos + head]))
            masked = second & mask_bit
            if masked:
                head += 4
            if limit is not None and length > limit:
                return self._fail(out, CLOSE_MESSAGE_TOO_BIG, bytes(source[pos : pos + head]))
            if length >> 62:
                return self._fail(out, CLOSE_PROTOCOL_ERROR, bytes(source[pos : pos + head]))
            end = pos + head + length
            if end > size:
                break
            if first == whole_text and bool(masked) is self._masked_in and not self._fragmented:
                if masked:
                    out.append(
                        unmask(
                            bytes(source[end - length : end]),
                            source[end - length - 4 : end - length],
                        )
                    )
                else:
                    out.append(bytes(source[end - length : end]))
            else:
                frame = bytes(source[pos:end])
                opcode = first & OPCODE_BITS
                if opcode in (OP_TEXT, OP_BINARY) and not first & FIN:
                    self._fragmented = True
                elif opcode == OP_CONTINUATION and first & FIN:
                    self._fragmented = False
                try:
                    self._ws.receive_data(frame)
                except WsLocalProtocolError:  # pragma: no cover - wsproto refuses data when closed
                    return out
                self._collect(out, frame, eof=False)
                if self.failed or self._peer_closed:
                    pos = end
                    break
            pos = end
        if source is buffer:
            del buffer[:pos]
        elif pos < size:
            buffer += data[pos:]
        return out

    def _collect(self, out: list[ChannelEvent], data: bytes, eof: bool) -> list[ChannelEvent]:
        """Turn wsproto's events (for one complete frame, or the end of the stream) into ours."""
        for event in self._ws.events():
            if type(event) is TextMessage:
                text = event.data
                self._size += _utf8_length(text)
                if self._limit is not None and self._size > self._limit:
                    return self._fail(out, CLOSE_MESSAGE_TOO_BIG, data)
                self._parts.append(text)
                if event.message_finished:
                    out.append("".join(self._parts).encode())
                    self._parts.clear()
                    self._size = 0
            elif type(event) is BytesMessage:
                self._size += len(event.data)
                if self._limit is not None and self._size > self._limit:
                    return self._fail(out, CLOSE_MESSAGE_TOO_BIG, data)
                self._binary_parts.append(bytes(event.data))
                if event.message_finished:
                    out.append(BinaryReceived(b"".join(self._binary_parts)))
                    self._binary_parts.clear()
                    self._size = 0
            elif type(event) is Ping:
                if self._ws.state is ConnectionState.OPEN:  # no pong once a close frame went
                    self._outgoing += self._ws.send(event.response())
            elif type(event) is Pong:
                out.append(PongReceived(bytes(event.payload)))
            else:
                assert type(event) is CloseConnection
                if not eof and self._ws.state in (
                    ConnectionState.OPEN,
                    ConnectionState.LOCAL_CLOSING,
                ):
                    # wsproto reports a frame it could not parse as a close event and leaves the
                    # state alone; a real close frame moves it to REMOTE_CLOSING or CLOSED.
                    return self._fail(out, event.code, data, event.reason or "")
                self._peer_closed = True
                out.append(PeerClosed(event.code, event.reason or ""))
        return out

    def _fail(
        self, out: list[ChannelEvent], code: int, data: bytes, reason: str = ""
    ) -> list[ChannelEvent]:
        self.failed = True
        if code == CLOSE_MESSAGE_TOO_BIG:
            reason = f"message larger than {self._limit} bytes"
        elif not reason:
            reason = "invalid frame header"
        out.append(ChannelFailed(code, reason, data))
        return out
