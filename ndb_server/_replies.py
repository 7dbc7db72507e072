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

from ndb_proto.status import Status
from ndb_server._wirejson import is_u64

__all__ = [
    "RequestBody",
    "Kind",
    "Param",
    "Reply",
    "command_error",
    "declare",
    "envelope_error",
    "reply",
    "validate",
]

RequestBody = dict[str, object]
"""The value of a request's single member: the command's parameters."""
Reply = dict[str, dict[str, object]]
"""A reply: one member named ``<CMD>_RSP`` or ``ERR`` whose value holds ``st`` and friends."""


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


def validate(body: RequestBody, params: Sequence[Param]) -> tuple[int, str] | None:
    """The first failure among ``params`` (ordered by ``declare``) as ``(26|41, m)``, or None."""
    for param in params:
        if param.name not in body:
            if param.required:
                return Status.PARAM_MISSING, MSG_MISSING
            continue
        if not _kind_matches(param.kind, body[param.name]):
            return Status.VALUE_TYPE_INVALID, MSG_TYPE
    return None


def _param_name(param: Param) -> str:
    return param.name
