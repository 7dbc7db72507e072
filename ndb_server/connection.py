"""One client connection on the server side, sans-IO: the upgrade handshake, then every text
message handed to the engine and its reply framed back. It reuses the client core's message
layer (`ndb_proto.channel`), so framing exists once.

It behaves like NemesisDB 0.7.4's uWebSockets front end: any path is upgraded, the first offered
subprotocol is echoed, a plain HTTP request gets 404, a message over ``max_payload`` or with
invalid UTF-8 drops the TCP connection without a close frame, a close frame is echoed, and a
connection that sends nothing is pinged after ``idle_ping`` seconds and dropped at
``idle_timeout``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from wsproto.connection import Connection, ConnectionType
from wsproto.events import AcceptConnection, Request
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from ndb_proto.channel import (
    BinaryReceived,
    ChannelEvent,
    ChannelFailed,
    MessageChannel,
    PeerClosed,
    after_headers,
)

NOT_FOUND = b"HTTP/1.1 404 File Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Outcome(Enum):
    """What the transport should do with the socket after writing `data_to_send`."""

    KEEP = "keep"
    CLOSE = "close"  # the close handshake is done: close the socket normally
    DROP = "drop"  # abort the TCP connection at once, as uWS does on errors


class ServerConnection:
    def __init__(
        self,
        handle_text: Callable[[str], str | None],
        handle_binary: Callable[[bytes], str | None],
        *,
        max_payload: int,
        now: float,
        idle_ping: float = 164.0,
        idle_timeout: float = 180.0,
        backpressure_limit: int | None = None,
        unsent: Callable[[], int] = lambda: 0,
    ) -> None:
        """``handle_text``/``handle_binary`` answer one message (None: no reply, a fault the
        test kit placed). ``unsent`` tells how many bytes the transport holds unwritten; with it,
        a reply is dropped (silently, as uWebSockets does past NemesisDB's 128 KiB
        ``maxBackpressure``) while more than ``backpressure_limit`` bytes of output wait.
        Control frames are kept."""
        self._backpressure_limit = backpressure_limit
        self._unsent = unsent
        self._handle_text = handle_text
        self._handle_binary = handle_binary
        self._max_payload = max_payload
        self._handshake: H11Handshake | None = H11Handshake(ConnectionType.SERVER)
        self._request_bytes = b""
        self._channel: MessageChannel | None = None
        self._out = bytearray()
        self.outcome = Outcome.KEEP
        self.idle_ping = idle_ping
        self.idle_timeout = idle_timeout
        self._last_receive = now
        self._pinged = False

    def data_to_send(self) -> bytes:
        channel = self._channel
        if channel is not None:
            if not self._out:  # after the handshake, the usual case: one copy, not two
                return channel.data_to_send()
            self._out += channel.data_to_send()
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_deadline(self) -> float:
        return self._last_receive + (self.idle_timeout if self._pinged else self.idle_ping)

    def handle_timeout(self, now: float) -> None:
        """Ping a silent client once, then drop it (uWS sendPingsAutomatically)."""
        if self.outcome is not Outcome.KEEP:
            return
        silent = now - self._last_receive
        if silent >= self.idle_timeout:
            self.outcome = Outcome.DROP
        elif silent >= self.idle_ping and not self._pinged:
            # Before the upgrade there is nothing to ping with; the drop still comes.
            if self._channel is not None:
                self._channel.send_ping()
            self._pinged = True

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the socket (``b""`` at EOF); replies go to `data_to_send`."""
        if self.outcome is not Outcome.KEEP:
            return
        self._last_receive = now
        self._pinged = False
        if self._handshake is not None:
            self._receive_handshake(data)
        else:
            assert self._channel is not None
            self._receive_messages(self._channel.receive(data))

    def _receive_handshake(self, data: bytes) -> None:
        handshake = self._handshake
        assert handshake is not None
        self._request_bytes += data
        try:
            handshake.receive_data(data if data else None)
            events = list(handshake.events())
        except WsRemoteProtocolError:
            self._out += NOT_FOUND
            self.outcome = Outcome.CLOSE
            return
        for event in events:
            if isinstance(event, Request):
                subprotocol = event.subprotocols[0] if event.subprotocols else None
                self._out += handshake.send(AcceptConnection(subprotocol=subprotocol))
                trailing = after_headers(self._request_bytes)
                self._handshake = None
                self._request_bytes = b""
                self._channel = MessageChannel(Connection(ConnectionType.SERVER), self._max_payload)
                if trailing:
                    self._receive_messages(self._channel.receive(trailing))
                return
        if not data:
            self.outcome = Outcome.DROP

    def _receive_messages(self, items: list[ChannelEvent]) -> None:
        channel = self._channel
        assert channel is not None
        for item in items:
            if type(item) is bytes:
                try:
                    text = item.decode()
                except UnicodeDecodeError:
                    # uWS checks UTF-8 and closes the socket, with no close frame or reply.
                    self.outcome = Outcome.DROP
                    return
                self._reply(self._handle_text(text))
            elif isinstance(item, BinaryReceived):
                self._reply(self._handle_binary(item.data))
            elif isinstance(item, PeerClosed):
                if item.code == 1006:
                    self.outcome = Outcome.DROP
                else:
                    channel.send_close(item.code, item.reason)
                    self.outcome = Outcome.CLOSE
                return
            elif isinstance(item, ChannelFailed):
                # Too big, invalid UTF-8, bad framing: uWS closes the socket, no close frame.
                self.outcome = Outcome.DROP
                return
            # Pongs need nothing: any frame already reset the idle timer.

    def _reply(self, text: str | None) -> None:
        channel = self._channel
        assert channel is not None
        if text is None or not channel.is_open:
            # No reply planned, or the client's close frame came in the same read as this
            # message: wsproto allows no more messages, and the client waits for none.
            return
        limit = self._backpressure_limit
        if limit is not None and self._unsent() + channel.pending_size > limit:
            return  # dropped: the command ran, its reply is lost
        channel.send_text(text.encode())

    def shutdown(self) -> None:
        """The server is stopping: send close 1000, as NemesisDB does to every client."""
        if self._channel is not None and self.outcome is Outcome.KEEP:
            self._channel.send_close(1000, "")
            self.outcome = Outcome.CLOSE
        elif self.outcome is Outcome.KEEP:
            self.outcome = Outcome.DROP
