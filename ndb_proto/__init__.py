"""ndb_proto: the sans-IO core of the ndb NemesisDB client.

No sockets, no event loop, no threads, no clock: bytes and times go in, events and bytes come
out. Every transport (``ndb_transports``) and the embedded server (``ndb_server``) share it.

* `ndb_proto.calls`: the command surface (one function per client method).
* `ndb_proto.commands`: the command table (names, reply names, success statuses).
* `ndb_proto.client`: the client core, `ClientProtocol`, made of the parts below.
* `ndb_proto.states`: its states and every legal change between them, as one table.
* `ndb_proto.pipeline`: FIFO request/reply matching, the window, deadlines.
* `ndb_proto.handshake`, `ndb_proto.keepalive`, `ndb_proto.reconnect`: the WebSocket upgrade,
  pings, and when and where to connect, each with its own deadline.
* `ndb_proto.errors`: every exception ndb raises on purpose, under `NdbError`.
* `ndb_proto.channel`: WebSocket messages over wsproto, shared with the server.
"""

from ndb_proto._version import __version__
from ndb_proto.client import ClientProtocol, State
from ndb_proto.commands import COMMANDS, Command, Request
from ndb_proto.errors import (
    ClientClosedError,
    ConnectionLostError,
    DecodeError,
    LocalProtocolError,
    NdbError,
    NdbTimeoutError,
    ProtocolError,
    ReadReplyLimitError,
    RemoteProtocolError,
    ReplyMismatchError,
    ReplyShapeError,
    RequestTooLargeError,
    ResponseError,
)
from ndb_proto.events import (
    Closed,
    Connected,
    ConnectionLost,
    Event,
    ReplyReceived,
    RequestFailed,
    UndecodableData,
)
from ndb_proto.reconnect import Backoff, ConnectPlan
from ndb_proto.session import Session
from ndb_proto.status import Status
from ndb_proto.uri import Endpoint, parse_uri

__all__ = [
    "__version__",
    "COMMANDS",
    "Backoff",
    "ClientClosedError",
    "ClientProtocol",
    "Closed",
    "Command",
    "ConnectPlan",
    "Connected",
    "ConnectionLost",
    "ConnectionLostError",
    "DecodeError",
    "Endpoint",
    "Event",
    "LocalProtocolError",
    "NdbError",
    "NdbTimeoutError",
    "ProtocolError",
    "ReadReplyLimitError",
    "RemoteProtocolError",
    "ReplyMismatchError",
    "ReplyShapeError",
    "ReplyReceived",
    "Request",
    "RequestFailed",
    "RequestTooLargeError",
    "ResponseError",
    "Session",
    "State",
    "Status",
    "UndecodableData",
    "parse_uri",
]
