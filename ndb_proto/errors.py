"""Every exception ndb raises on purpose, in one module and under one root, `NdbError`.

The tree (what a caller usually catches is marked ``*``)::

    NdbError
    ├── ResponseError *             the server answered with a status that is not success
    ├── ConnectionLostError *       (also a ConnectionError) the connection ended before the reply
    │   └── ClientClosedError *     ... because the client was closed, or never opened
    ├── NdbTimeoutError *           (also a TimeoutError) the request's deadline passed
    ├── ProtocolError
    │   ├── LocalProtocolError      the core was driven in a way it does not allow (a caller bug)
    │   └── RemoteProtocolError     the server sent what no NemesisDB 0.7.4 server sends
    │       ├── ReplyShapeError     a success reply lacks a member or has one of the wrong type
    │       └── ReplyMismatchError  a reply answers another request (FIFO matching is off)
    ├── RequestTooLargeError        (also a ValueError) larger than ``max_message_size``
    └── DecodeError                 (also a ValueError) a text that is not JSON we can read

``ConnectionLostError`` and ``NdbTimeoutError`` carry ``outcome_unknown``: True when the request
had been written (it may have run; ndb never resends it), False when it was never written.

Invalid arguments are reported, before anything is sent, with plain `ValueError` / `TypeError`
whose message names the parameter. The two that are also `NdbError` subclasses
(`RequestTooLargeError`, `DecodeError`) keep ``except ValueError`` working. `ndb_proto.commands`
and `ndb_proto.codec` re-export the classes that used to live there, so old imports still work.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ndb_proto.status import Status, status_or_int

_E = TypeVar("_E", bound=BaseException)


def with_cause(error: _E, cause: BaseException | None) -> _E:
    """``error`` chained to ``cause`` (None: shown without the exception being handled), as
    ``raise error from cause`` does. The core writes ``raise with_cause(error, cause) from
    cause``: the compiled build (mypyc) ignores the ``from`` clause, and both builds must chain
    alike."""
    error.__cause__ = cause
    return error


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


class ReplyShapeError(RemoteProtocolError):
    """A success reply lacks a member, or has one of the wrong type."""


class ReplyMismatchError(RemoteProtocolError):
    """A reply's contents answer another request (keys that were not asked for, another
    token): the server dropped a reply, and FIFO matching is off by one."""


class ReadReplyLimitError(NdbError):
    """A read's reply was larger than the client's ``read_reply_limit``.

    The read itself got its reply. But the limit is what let other requests be written behind
    it, and the server may have dropped their replies (it discards replies once 128 KiB of its
    output is unread), so the connection is given up: those requests fail with a
    `ConnectionLostError` (``outcome_unknown=True``) caused by this error.
    """


class RequestTooLargeError(NdbError, ValueError):
    """The encoded request is larger than ``max_message_size``.

    NemesisDB drops the whole connection, with every request in flight, on a message larger than
    its ``maxPayload``, so such a request is refused before it is sent.
    """


class DecodeError(NdbError, ValueError):
    """A text that is not one JSON value we can read: invalid JSON, invalid UTF-8, or nested
    deeper than the decoder goes. Ours, so that callers and tests depend on our type and our
    message rather than on the wording of the JSON library underneath."""
