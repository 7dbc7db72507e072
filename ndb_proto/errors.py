"""The exceptions ndb raises on purpose, as one small hierarchy.

``NdbError`` is the root. What a caller usually catches:

* `ResponseError`: the server answered, with a status that is not success for that command.
* `ConnectionLostError`: the connection went away before the reply came. ``outcome_unknown`` tells
  whether the request had been written (it may have run) or not (it certainly did not).
* `NdbTimeoutError`: the request's deadline passed. It is also a `TimeoutError`.
* `ClientClosedError`: a `ConnectionLostError` because the client was closed (or never opened).
* `RemoteProtocolError`: the server sent something no NemesisDB 0.7.4 server sends.
* `LocalProtocolError`: the core was driven in a way it does not allow (a bug in the caller).

Invalid arguments are reported with plain `ValueError` / `TypeError` whose message names the
parameter, before anything is sent. `RequestTooLargeError` is the `ValueError` for a request whose
encoded size the server would refuse by dropping the connection.
"""

from __future__ import annotations

from typing import Any

from ndb_proto.status import Status, status_or_int


class NdbError(Exception):
    """Root of every exception ndb raises on purpose."""


class ResponseError(NdbError):
    """The server replied with a status that is not a success for the command.

    ``status`` is a `Status` (or a bare int for a value 0.7.4 does not define), ``command`` the
    request's command name, and ``rsp`` the reply body: the object under ``<CMD>_RSP`` or ``ERR``.
    """

    def __init__(self, command: str, status: Status | int, rsp: dict[str, Any]) -> None:
        self.command = command
        self.status = status_or_int(int(status))
        self.rsp = rsp
        name = self.status.name if isinstance(self.status, Status) else "UNDEFINED_STATUS"
        detail = rsp.get("m") if isinstance(rsp, dict) else None
        text = f"{command} failed: {name} ({int(self.status)})"
        if isinstance(detail, str) and detail:
            text += f": {detail}"
        super().__init__(text)


class ConnectionLostError(NdbError, ConnectionError):
    """The connection ended before this request's reply arrived.

    ``outcome_unknown`` is True when the request had already been written: the server may or may
    not have run it, so ndb never resends it. It is False when the request was never written.
    It is None when the error describes the connection itself rather than a request (the
    ``error`` of a `ConnectionLost` event, or the ``__cause__`` of a request's error).
    """

    def __init__(self, message: str, *, outcome_unknown: bool | None = None) -> None:
        self.outcome_unknown = outcome_unknown
        if outcome_unknown is True:
            message += "; the request was sent, so its outcome is unknown"
        elif outcome_unknown is False:
            message += "; the request was not sent"
        super().__init__(message)


class NdbTimeoutError(NdbError, TimeoutError):
    """The request's deadline passed before its reply arrived.

    ``outcome_unknown`` is True when the request had been written (it may still run on the server),
    False when it was not, and None when the timeout is the connection's own (a handshake).
    """

    def __init__(self, message: str, *, outcome_unknown: bool | None = None) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message)


class ClientClosedError(ConnectionLostError):
    """The request ended because the client was closed, or was used before it was opened.

    It is a `ConnectionLostError`, with ``outcome_unknown`` set the same way.
    """


class ProtocolError(NdbError):
    """Base of the two protocol-violation errors."""


class LocalProtocolError(ProtocolError):
    """The core was used in a way it does not allow: a bug in the code driving it."""


class RemoteProtocolError(ProtocolError):
    """The server sent something that NemesisDB 0.7.4 never sends; ``data`` holds the raw bytes."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        self.data = data
        super().__init__(message)


class RequestTooLargeError(ValueError):
    """The encoded request is larger than ``max_message_size``.

    NemesisDB drops the whole connection, with every request in flight, on a message larger than
    its ``maxPayload``, so such a request is refused before it is sent.
    """
