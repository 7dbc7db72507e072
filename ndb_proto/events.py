"""What the client core tells its transport, as frozen dataclasses.

Per request, exactly one of `ReplyReceived` or `RequestFailed` is produced, unless the transport
abandoned the request first (then neither is, ever). Per connection, `Connected` is produced once
the handshake succeeds and `ConnectionLost` once it ends for any reason other than `close()`;
`Closed` is produced once, when the client is closed. After `ConnectionLost` and `Closed` the
transport closes its socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ndb_proto.errors import NdbError
from ndb_proto.uri import Endpoint


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    request_id: int
    value: Any


@dataclass(frozen=True, slots=True)
class RequestFailed:
    request_id: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class Connected:
    endpoint: Endpoint
    subprotocol: str | None


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The connection ended; ``error`` says why. The transport should close the socket and, if
    the core has a reconnect planned (`ClientProtocol.next_connect`), follow it."""

    endpoint: Endpoint
    error: NdbError


@dataclass(frozen=True, slots=True)
class Closed:
    """`ClientProtocol.close` finished: the socket can be closed; nothing more will happen."""


@dataclass(frozen=True, slots=True)
class UndecodableData:
    """Bytes the core could not make sense of, kept whole so a transport can dump them."""

    data: bytes
    reason: str


Event = ReplyReceived | RequestFailed | Connected | ConnectionLost | Closed | UndecodableData
