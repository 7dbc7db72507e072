"""The WebSocket message layer shared by the client core and the embedded server.

wsproto parses frames; this layer puts text messages back together under a size limit (wsproto
has none), answers pings, and reports everything else as small events. Both roles use it, so the
framing code exists once.

`MessageChannel.receive` returns a list whose items are either a complete text message (`str`,
the common case, kept as a bare string so the hot path allocates nothing extra) or one of the
event classes below.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError

from ndb_proto.errors import LocalProtocolError
from ndb_proto.frames import text_frame

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_ABNORMAL = 1006
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


ChannelEvent = str | BinaryReceived | PongReceived | PeerClosed | ChannelFailed


def _utf8_length(text: str) -> int:
    # str.isascii() is O(1) in CPython, so ASCII text (the usual reply) is measured for free.
    return len(text) if text.isascii() else len(text.encode())


class MessageChannel:
    """An open WebSocket connection: bytes in, messages and events out, bytes to send."""

    def __init__(self, connection: Connection, max_message_size: int | None) -> None:
        self._ws = connection
        self._mask = connection.client
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
        if self._ws.state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"cannot send a message in state {self._ws.state.name}")
        self._outgoing += text_frame(payload, mask=self._mask)  # type: ignore[arg-type]

    def send_ping(self, payload: bytes = b"") -> None:
        self._outgoing += self._ws.send(Ping(payload))

    def send_close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start (or answer) the close handshake, if the state still allows a close frame."""
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._outgoing += self._ws.send(CloseConnection(code, reason))

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._outgoing)

    def data_to_send(self) -> bytes:
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive(self, data: bytes) -> list[ChannelEvent]:
        """Feed received bytes (``b""`` for end of stream) and collect what they completed."""
        if self.failed:
            return []
        try:
            self._ws.receive_data(data if data else None)
        except WsLocalProtocolError:
            # wsproto refuses data after the connection is closed; the bytes are ignored.
            return []
        return self._collect(data, eof=not data)

    def pending(self) -> list[ChannelEvent]:
        """Collect what bytes already buffered (e.g. with the handshake response) completed."""
        return self._collect(b"", eof=False)

    def _collect(self, data: bytes, eof: bool) -> list[ChannelEvent]:
        out: list[ChannelEvent] = []
        for event in self._ws.events():
            if type(event) is TextMessage:
                text = event.data
                if event.message_finished and not self._parts:
                    if self._limit is not None and _utf8_length(text) > self._limit:
                        return self._fail(out, CLOSE_MESSAGE_TOO_BIG, data)
                    out.append(text)
                    continue
                self._size += _utf8_length(text)
                if self._limit is not None and self._size > self._limit:
                    return self._fail(out, CLOSE_MESSAGE_TOO_BIG, data)
                self._parts.append(text)
                if event.message_finished:
                    out.append("".join(self._parts))
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
                out.append(PeerClosed(event.code, event.reason or ""))
        return out

    def _fail(
        self, out: list[ChannelEvent], code: int, data: bytes, reason: str = ""
    ) -> list[ChannelEvent]:
        self.failed = True
        if code == CLOSE_MESSAGE_TOO_BIG:
            reason = f"message larger than {self._limit} bytes"
        out.append(ChannelFailed(code, reason, data))
        return out
