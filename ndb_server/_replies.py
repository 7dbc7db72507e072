"""Status codes, the three error-reply shapes and the common parameter validation.

docs/protocol.md §5 (status values), §6 (validation) and §12 item 1 (error shapes):

* ``envelope_error`` -> ``{"ERR":{"m":"","st":N}}``: no ``tkn``, not the command's name;
* ``command_error`` -> ``{"<CMD>_RSP":{"m":"...","st":N,"tkn":null}}``: validation errors and
  "session not found" on SH data commands;
* ``reply`` -> ``{"<CMD>_RSP":{"st":N, ...}}``: successes and the remaining failures, with
  exactly the members given.

``validate`` checks declared parameters in alphabetical order and reports the first failure,
as ``isValid()`` does in the server.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ndb_server._wirejson import is_u64

__all__ = [
    "Body",
    "Kind",
    "Param",
    "Reply",
    "St",
    "command_error",
    "declare",
    "envelope_error",
    "reply",
    "validate",
]

Body = dict[str, object]
"""The value of a request's single member: the command's parameters."""
Reply = dict[str, dict[str, object]]
"""A reply: one member named ``<CMD>_RSP`` or ``ERR`` whose value holds ``st`` and friends."""


class St:
    """Status values (``RequestStatus`` in the server) that 0.7.4 actually sends."""

    OK: Final = 1
    OPCODE_INVALID: Final = 2
    JSON_INVALID: Final = 3
    PATH_INVALID: Final = 4
    COMMAND_NOT_EXIST: Final = 10
    COMMAND_SYNTAX: Final = 13
    COMMAND_DISABLED: Final = 14
    KEY_NOT_EXIST: Final = 22
    PARAM_MISSING: Final = 26
    VALUE_TYPE_INVALID: Final = 41
    VALUE_SIZE: Final = 42
    SESSION_NOT_EXIST: Final = 100
    SESSION_NEW_FAIL: Final = 103
    SAVE_COMPLETE: Final = 121
    SAVE_DIR_WRITE_FAIL: Final = 122
    SAVE_ERROR: Final = 123
    LOADING: Final = 140
    LOAD_COMPLETE: Final = 141
    LOAD_ERROR: Final = 142
    UNKNOWN: Final = 1000


MSG_MISSING: Final = "Missing parameter"
MSG_TYPE: Final = "Param type incorrect"


def envelope_error(status: int) -> Reply:
    """``{"ERR":{"m":"","st":status}}``."""
    return {"ERR": {"m": "", "st": status}}


def command_error(rsp: str, status: int, message: str = "") -> Reply:
    """``{"<rsp>":{"m":message,"st":status,"tkn":null}}``."""
    return {rsp: {"m": message, "st": status, "tkn": None}}


def reply(rsp: str, status: int, **members: object) -> Reply:
    """``{"<rsp>":{"st":status, **members}}``."""
    body: dict[str, object] = {"st": status}
    body.update(members)
    return {rsp: body}


class Kind(enum.Enum):
    """Declared parameter types; "uint64" only accepts a non-negative integer literal."""

    OBJECT = "object"
    ARRAY = "array"
    STRING = "string"
    BOOL = "bool"
    UINT64 = "uint64"
    ANY = "any"


def _kind_matches(kind: Kind, value: object) -> bool:
    if kind is Kind.OBJECT:
        return isinstance(value, dict)
    if kind is Kind.ARRAY:
        return isinstance(value, list)
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.BOOL:
        return isinstance(value, bool)
    if kind is Kind.UINT64:
        return is_u64(value)
    return True


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter of a command."""

    name: str
    kind: Kind
    required: bool = True


def declare(*params: Param) -> tuple[Param, ...]:
    """A command's parameters in the order the server checks them (alphabetical by name)."""
    return tuple(sorted(params, key=_param_name))


def validate(body: Body, params: Sequence[Param]) -> tuple[int, str] | None:
    """The first failure among ``params`` (ordered by ``declare``) as ``(26|41, m)``, or None."""
    for param in params:
        if param.name not in body:
            if param.required:
                return St.PARAM_MISSING, MSG_MISSING
            continue
        if not _kind_matches(param.kind, body[param.name]):
            return St.VALUE_TYPE_INVALID, MSG_TYPE
    return None


def _param_name(param: Param) -> str:
    return param.name
