"""The command table: every NemesisDB 0.7.4 command, declared once.

A `Command` names the wire command, its reply member (``<NAME>_RSP``) and the statuses that mean
success. A `Request` is one encoded command plus the function that turns its reply body into the
caller's result. The public functions that build requests (argument checks included) are in
`ndb_proto.calls`; the transports expose those, so no command is written per transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ndb_proto.codec import encode
from ndb_proto.errors import RemoteProtocolError
from ndb_proto.status import Status

T = TypeVar("T")

Body = dict[str, Any]
"""A reply body: the object under the reply's single member."""

OK = frozenset({Status.OK})


@dataclass(frozen=True, slots=True)
class Command:
    """One wire command: its name, reply name and success statuses."""

    name: str
    success: frozenset[int] = OK
    rsp: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rsp", self.name + "_RSP")

    def request(self, params: Body, result: Callable[[Body], T]) -> Request[T]:
        """Encode ``{name: params}``; a string that is not valid Unicode is refused by name."""
        try:
            payload = encode({self.name: params})
        except UnicodeEncodeError:
            for param, value in params.items():
                try:
                    encode(value)
                except UnicodeEncodeError as exc:
                    raise ValueError(
                        f"{param}: contains a string that is not valid Unicode "
                        f"(a lone surrogate); the server would drop the connection"
                    ) from exc
            raise  # pragma: no cover - some parameter always fails above
        return Request(self, payload, result)


class Request(Generic[T]):
    """One encoded command, ready to send, and how to read its reply."""

    __slots__ = ("command", "payload", "result")

    def __init__(self, command: Command, payload: bytes, result: Callable[[Body], T]) -> None:
        self.command = command
        self.payload = payload
        self.result = result

    def __repr__(self) -> str:
        return f"Request({self.command.name}, {self.payload[:60]!r})"


# --- the table -------------------------------------------------------------------------------

KV_SET = Command("KV_SET")
KV_ADD = Command("KV_ADD")
KV_GET = Command("KV_GET")
KV_RMV = Command("KV_RMV")
KV_CLEAR = Command("KV_CLEAR")
KV_COUNT = Command("KV_COUNT")
KV_CONTAINS = Command("KV_CONTAINS")
KV_KEYS = Command("KV_KEYS")
KV_CLEAR_SET = Command("KV_CLEAR_SET")
KV_FIND = Command("KV_FIND")
KV_UPDATE = Command("KV_UPDATE")
KV_ARR_APPEND = Command("KV_ARR_APPEND")
KV_SAVE = Command("KV_SAVE", frozenset({Status.SAVE_COMPLETE}))
# 140 (LOADING) is what 0.7.4 answers for a dataset saved from an empty store: 0 keys loaded.
KV_LOAD = Command("KV_LOAD", frozenset({Status.LOAD_COMPLETE, Status.LOADING}))

SH_NEW = Command("SH_NEW")
SH_END = Command("SH_END")
SH_END_ALL = Command("SH_END_ALL")
SH_EXISTS = Command("SH_EXISTS")
SH_INFO = Command("SH_INFO")
SH_INFO_ALL = Command("SH_INFO_ALL")
SH_SAVE = Command("SH_SAVE", frozenset({Status.SAVE_COMPLETE}))
SH_LOAD = Command("SH_LOAD", frozenset({Status.LOAD_COMPLETE}))
SH_SET = Command("SH_SET")
SH_ADD = Command("SH_ADD")
SH_GET = Command("SH_GET")
SH_RMV = Command("SH_RMV")
SH_CLEAR = Command("SH_CLEAR")
SH_COUNT = Command("SH_COUNT")
SH_CONTAINS = Command("SH_CONTAINS")
SH_KEYS = Command("SH_KEYS")
SH_CLEAR_SET = Command("SH_CLEAR_SET")

SV_INFO = Command("SV_INFO")

COMMANDS: dict[str, Command] = {
    command.name: command for command in globals().copy().values() if isinstance(command, Command)
}
"""Every command of NemesisDB 0.7.4 by name (32 of them)."""

REPLY_NAMES: dict[str, Command] = {command.rsp: command for command in COMMANDS.values()}


# --- reading reply bodies --------------------------------------------------------------------


class ReplyShapeError(RemoteProtocolError):
    """A success reply lacks a member, or has one of the wrong type."""


def ignore(body: Body) -> None:
    """The reply carries nothing but its status."""


def member(name: str, kind: type[T]) -> Callable[[Body], T]:
    """Read one member of the reply body, checking its JSON type."""

    def read(body: Body) -> T:
        value = body.get(name)
        if type(value) is not kind:  # exact: the decoder makes plain types; a bool is no count
            raise ReplyShapeError(
                f"reply member {name!r} should be {kind.__name__}, got {type(value).__name__}"
            )
        return value

    read.__qualname__ = f"member({name!r}, {kind.__name__})"
    return read


def without_status(body: Body) -> Body:
    """The whole reply body minus ``st``, as NemesisDB's Python client returns info replies."""
    result = dict(body)
    del result["st"]
    return result
