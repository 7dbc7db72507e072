"""The client's side of the WebSocket upgrade (RFC 6455 §4) on one connection, and its deadline.

wsproto's handshake object writes the HTTP request and reads the response; this component keeps
what it needs around that: the response's bytes so far (frames may follow it in the same read),
the deadline (``connect_timeout`` counts from the start of the attempt, TCP and TLS included),
and the outcome in our terms: accepted, or failed with the `ConnectionLostError` that says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wsproto.connection import ConnectionType
from wsproto.events import AcceptConnection, RejectConnection
from wsproto.events import Request as UpgradeRequest
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from ndb_proto.channel import ReceivedData, after_headers
from ndb_proto.errors import ConnectionLostError, NdbTimeoutError
from ndb_proto.uri import Endpoint


@dataclass(frozen=True, slots=True)
class HandshakeAccepted:
    """The server switched to WebSocket; ``trailing`` holds frames that came with the response."""

    subprotocol: str | None
    trailing: bytes


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """The upgrade failed; ``data`` is the chunk that could not be read (b"" for a refusal)."""

    error: ConnectionLostError
    data: bytes = b""


class ClientHandshake:
    """One upgrade attempt: `request` to send, then `receive` until it returns an outcome."""

    __slots__ = ("_http", "_received", "deadline", "timeout")

    def __init__(self, deadline: float, timeout: float) -> None:
        self.deadline = deadline
        """When the attempt counts as timed out (`timed_out` describes it)."""
        self.timeout = timeout
        self._http = H11Handshake(ConnectionType.CLIENT)
        self._received = b""

    def request(
        self,
        endpoint: Endpoint,
        subprotocols: Sequence[str],
        extra_headers: list[tuple[bytes, bytes]],
    ) -> bytes:
        """The upgrade request for ``endpoint``, to be written first on the socket."""
        return self._http.send(
            UpgradeRequest(
                host=endpoint.host_header,
                target=endpoint.target,
                subprotocols=list(subprotocols),
                extra_headers=extra_headers,
            )
        )

    def receive(self, data: ReceivedData) -> HandshakeAccepted | HandshakeFailed | None:
        """Feed bytes of the response (``b""``: the server closed); None while incomplete."""
        self._received += data
        try:
            self._http.receive_data(bytes(data) if data else None)
            events = list(self._http.events())
        except (WsRemoteProtocolError, UnicodeDecodeError) as exc:  # wsproto: non-ASCII headers
            error = ConnectionLostError(f"WebSocket handshake failed: {exc}")
            return HandshakeFailed(error, bytes(data))
        for event in events:
            if isinstance(event, AcceptConnection):
                return HandshakeAccepted(event.subprotocol, after_headers(self._received))
            # A refusal starts with RejectConnection; its body (RejectData) is never read.
            assert isinstance(event, RejectConnection)
            return HandshakeFailed(
                ConnectionLostError(
                    f"the server refused the WebSocket upgrade with HTTP {event.status_code}"
                )
            )
        if not data:
            return HandshakeFailed(
                ConnectionLostError("the server closed the connection during the handshake")
            )
        return None

    def timed_out(self) -> NdbTimeoutError:
        """The error for an attempt whose `deadline` passed."""
        return NdbTimeoutError(f"the WebSocket handshake took longer than {self.timeout} s")
