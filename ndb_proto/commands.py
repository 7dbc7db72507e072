"""The command table: every NemesisDB 0.7.4 command, declared once.

A `Command` names the wire command, its reply member (``<NAME>_RSP``) and the statuses that mean
success. A `Request` is one encoded command plus the function that turns its reply body into the
caller's result. The public functions that build requests (argument checks included) are in
`ndb_proto.calls`; the transports expose those, so no command is written per transport.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from ndb_proto.codec import encode

# The reply errors live in ndb_proto.errors; re-exported (``as``) where they used to be defined.
from ndb_proto.errors import ReplyMismatchError as ReplyMismatchError
from ndb_proto.errors import ReplyShapeError as ReplyShapeError
from ndb_proto.errors import with_cause
from ndb_proto.status import Status

T = TypeVar("T")

Body = dict[str, Any]
"""A reply body: the object under the reply's single member."""

OK = frozenset({Status.OK})


ReplySize = Literal["fixed", "echoes request", "unbounded"]
"""How large a command's reply can be, as the pipeline's window needs to know."""

FIXED: ReplySize = "fixed"
"""A reply of a fixed shape: a status, counts, flags, a token (`FIXED_REPLY_BOUND` bytes)."""
ECHOES_REQUEST: ReplySize = "echoes request"
"""A reply that repeats at most what its request sent (CONTAINS, SH_EXISTS, a dataset name)."""
UNBOUNDED: ReplySize = "unbounded"
"""A reply that carries stored data (GET, KEYS, FIND): its size is known only once read."""

FIXED_REPLY_BOUND = 512
"""Bytes a reply of a fixed shape takes at most in the server's output, frame header included.

The widest is SH_INFO of an expiring session with every number at its widest (about 260 bytes).
"""
ECHO_FACTOR = 6
"""Bytes a reply may spend on each byte of its request that it repeats: a string's character
written as ``\\uXXXX`` by the server takes 6 bytes where our request may have spent 1."""


@dataclass(frozen=True, slots=True)
class Command:
    """One wire command: its name, reply name, success statuses, and how large its reply can be
    (``reply``: `FIXED`, `ECHOES_REQUEST` or `UNBOUNDED`).

    NemesisDB silently discards a reply once 128 KiB of its output to a connection is unread;
    the pipeline only writes a request when the replies ahead of it are known to fit, so the
    size class of every reply is declared here, from the protocol reference.
    """

    name: str
    success: frozenset[int] = OK
    reply: ReplySize = FIXED
    rsp: str = field(init=False)
    reply_bound: int = field(init=False)
    """The constant part of the reply's size bound in bytes; -1 when the reply is unbounded."""
    reply_per_request_byte: int = field(init=False)
    """What each byte of the request adds to the bound (0 unless the reply echoes the request)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rsp", self.name + "_RSP")
        object.__setattr__(
            self, "reply_bound", -1 if self.reply == UNBOUNDED else FIXED_REPLY_BOUND
        )
        per_byte = ECHO_FACTOR if self.reply == ECHOES_REQUEST else 0
        object.__setattr__(self, "reply_per_request_byte", per_byte)

    def request(self, params: Mapping[str, Any], result: Callable[[Body], T]) -> Request[T]:
        """Encode ``{name: params}``; a string that is not valid Unicode is refused by name.
        ``params`` is sent as given (a raw request, the CLI's or a test's, may hold anything
        JSON): the calls check their arguments before they get here."""
        try:
            payload = encode({self.name: params})
        except UnicodeEncodeError:
            for param, value in params.items():
                try:
                    encode(value)
                except UnicodeEncodeError as exc:
                    error = ValueError(
                        f"{param}: contains a string that is not valid Unicode "
                        f"(a lone surrogate); the server would drop the connection"
                    )
                    raise with_cause(error, exc) from exc
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
KV_GET = Command("KV_GET", reply=UNBOUNDED)
KV_RMV = Command("KV_RMV")
KV_CLEAR = Command("KV_CLEAR")
KV_COUNT = Command("KV_COUNT")
KV_CONTAINS = Command("KV_CONTAINS", reply=ECHOES_REQUEST)
KV_KEYS = Command("KV_KEYS", reply=UNBOUNDED)
KV_CLEAR_SET = Command("KV_CLEAR_SET")
KV_FIND = Command("KV_FIND", reply=UNBOUNDED)
KV_UPDATE = Command("KV_UPDATE")
KV_ARR_APPEND = Command("KV_ARR_APPEND")
KV_SAVE = Command("KV_SAVE", frozenset({Status.SAVE_COMPLETE}), ECHOES_REQUEST)  # echoes `name`
# 140 (LOADING) is what 0.7.4 answers for a dataset saved from an empty store: 0 keys loaded.
KV_LOAD = Command(
    "KV_LOAD", frozenset({Status.LOAD_COMPLETE, Status.LOADING}), ECHOES_REQUEST
)  # echoes `name`

SH_NEW = Command("SH_NEW")
SH_END = Command("SH_END")
SH_END_ALL = Command("SH_END_ALL")
SH_EXISTS = Command("SH_EXISTS", reply=ECHOES_REQUEST)
SH_INFO = Command("SH_INFO")
SH_INFO_ALL = Command("SH_INFO_ALL")
SH_SAVE = Command("SH_SAVE", frozenset({Status.SAVE_COMPLETE}), ECHOES_REQUEST)  # echoes `name`
SH_LOAD = Command("SH_LOAD", frozenset({Status.LOAD_COMPLETE}), ECHOES_REQUEST)  # echoes `name`
SH_SET = Command("SH_SET")
SH_ADD = Command("SH_ADD")
SH_GET = Command("SH_GET", reply=UNBOUNDED)
SH_RMV = Command("SH_RMV")
SH_CLEAR = Command("SH_CLEAR")
SH_COUNT = Command("SH_COUNT")
SH_CONTAINS = Command("SH_CONTAINS", reply=ECHOES_REQUEST)
SH_KEYS = Command("SH_KEYS", reply=UNBOUNDED)
SH_CLEAR_SET = Command("SH_CLEAR_SET")

SV_INFO = Command("SV_INFO")

COMMANDS: dict[str, Command] = {
    command.name: command for command in globals().copy().values() if isinstance(command, Command)
}
"""Every command of NemesisDB 0.7.4 by name (32 of them)."""

REPLY_NAMES: dict[str, Command] = {command.rsp: command for command in COMMANDS.values()}


# --- reading reply bodies --------------------------------------------------------------------


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


# --- replies that can be checked against their request ------------------------------------
# NemesisDB has no request ids. When it drops a reply (more than 128 KiB unread), every later
# reply answers the request before its own. Where a reply carries what was asked for, these
# readers check it, so such a shift fails the connection instead of misleading a caller.


def _mismatch(what: str) -> ReplyMismatchError:
    return ReplyMismatchError(f"the reply answers another request: {what}")


def keys_within(names: list[str]) -> Callable[[Body], dict[str, Any]]:
    """A GET reply's ``keys`` object, which can only hold names that were asked for."""
    read_keys = member("keys", dict)

    def read(body: Body) -> dict[str, Any]:
        found = read_keys(body)
        if found:
            wanted = set(names)
            for name in found:
                if name not in wanted:
                    raise _mismatch(f"key {name!r} was not asked for")
        return found

    return read


def one_key(name: str) -> Callable[[Body], Any]:
    """A GET-one reply: the value of ``name``, or None when it does not exist."""
    read_keys = keys_within([name])
    return lambda body: read_keys(body).get(name)


def subsequence_of(
    member_name: str, items: list[Any], kind: type = str
) -> Callable[[Body], list[Any]]:
    """A list member that repeats some of the requested ``items`` (names, or ``kind`` int for
    tokens), in request order (CONTAINS, SH_EXISTS, KV_FIND over given keys)."""
    read_list = member(member_name, list)

    def read(body: Body) -> list[Any]:
        found = read_list(body)
        if found:
            remaining = iter(items)
            for item in found:
                if type(item) is not kind:  # 1.0 and true equal the token 1, but are none
                    raise ReplyShapeError(
                        f"reply member {member_name!r} should hold {kind.__name__} items, "
                        f"got {type(item).__name__}"
                    )
                if not any(candidate == item for candidate in remaining):
                    raise _mismatch(f"{member_name} holds {item!r}, which was not asked for")
        return found

    return read


def echoing(member_name: str, value: Any, then: Callable[[Body], T]) -> Callable[[Body], T]:
    """A reply that echoes a request parameter (a token, a dataset name): check it, then read
    the rest with ``then``."""

    def read(body: Body) -> T:
        echoed = body.get(member_name)
        if echoed != value:
            raise _mismatch(f"{member_name} {echoed!r} instead of {value!r}")
        if type(echoed) is not type(value):  # 5.0 or true for the token 5 (1)
            raise ReplyShapeError(
                f"reply member {member_name!r} should be {type(value).__name__}, "
                f"got {type(echoed).__name__}"
            )
        return then(body)

    return read
