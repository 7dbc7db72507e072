"""The key/value commands that exist for the KV store and for sessions alike.

``KV_SET`` and ``SH_SET`` (and GET, ADD, RMV, CLEAR, COUNT, CONTAINS, KEYS, CLEAR_SET) run the
same operation, on the KV store or on one session's map. The SH flavour differs only in the
steps around it (docs/protocol.md §9.11): parameters are checked first, then ``tkn`` is read and the
session looked up (either failing gives ``{"m":"","st":100,"tkn":null}``), then the session's
expiry is extended if the command and the session's flags say so, and only then the operation
runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from ndb_proto.status import Status
from ndb_server import _kv
from ndb_server._replies import (
    Kind,
    Param,
    Reply,
    RequestBody,
    command_error,
    declare,
    reply,
    validate,
)
from ndb_server._sessions import Sessions, StoredSession
from ndb_server._state import Handler, ServerState, token_of

__all__ = ["kv_handlers", "sh_handlers"]

Run = Callable[[_kv.Map, RequestBody], dict[str, object]]
"""An operation on a map; returns the reply members besides ``st``."""


@dataclass(frozen=True, slots=True)
class _DataCommand:
    params: tuple[Param, ...]
    run: Run
    check: Callable[[RequestBody], tuple[int, str] | None] | None = None
    """Command-specific validation, run after the declared parameters pass."""
    extend: Callable[[Sessions, StoredSession], None] | None = None
    """How the SH flavour extends the session's expiry before running."""


def _keys_object(body: RequestBody) -> dict[str, object]:
    return cast(dict[str, object], body["keys"])


def _keys_array(body: RequestBody) -> list[object]:
    return cast(list[object], body["keys"])


def _set(store: _kv.Map, body: RequestBody) -> dict[str, object]:
    _kv.set_all(store, _keys_object(body))
    return {}


def _add(store: _kv.Map, body: RequestBody) -> dict[str, object]:
    _kv.add(store, _keys_object(body))
    return {}


def _get(store: _kv.Map, body: RequestBody) -> dict[str, object]:
    return {"keys": _kv.get(store, _keys_array(body))}


def _rmv(store: _kv.Map, body: RequestBody) -> dict[str, object]:
    _kv.remove(store, _keys_array(body))
    return {}


def _rmv_check(body: RequestBody) -> tuple[int, str] | None:
    return (Status.VALUE_SIZE, "keys") if not _keys_array(body) else None


def _clear(store: _kv.Map, _body: RequestBody) -> dict[str, object]:
    return {"cnt": _kv.clear(store)}


def _count(store: _kv.Map, _body: RequestBody) -> dict[str, object]:
    return {"cnt": len(store)}


def _contains(store: _kv.Map, body: RequestBody) -> dict[str, object]:
    return {"contains": _kv.contains(store, _keys_array(body))}


def _keys(store: _kv.Map, _body: RequestBody) -> dict[str, object]:
    return {"keys": list(store)}


def _clear_set(store: _kv.Map, body: RequestBody) -> dict[str, object]:
    return {"cnt": _kv.clear_set(store, _keys_object(body))}


_OBJECT_KEYS = declare(Param("keys", Kind.OBJECT))
_ARRAY_KEYS = declare(Param("keys", Kind.ARRAY))
_NO_PARAMS: tuple[Param, ...] = ()

_COMMANDS: dict[str, _DataCommand] = {
    "SET": _DataCommand(_OBJECT_KEYS, _set, extend=Sessions.extend_on_set_add),
    "ADD": _DataCommand(_OBJECT_KEYS, _add, extend=Sessions.extend_on_set_add),
    "GET": _DataCommand(_ARRAY_KEYS, _get, extend=Sessions.extend_on_get),
    "RMV": _DataCommand(_ARRAY_KEYS, _rmv, check=_rmv_check),
    "CLEAR": _DataCommand(_NO_PARAMS, _clear),
    "COUNT": _DataCommand(_NO_PARAMS, _count),
    "CONTAINS": _DataCommand(_ARRAY_KEYS, _contains),
    "KEYS": _DataCommand(_NO_PARAMS, _keys),
    "CLEAR_SET": _DataCommand(_OBJECT_KEYS, _clear_set),
}


def _failure(command: _DataCommand, body: RequestBody) -> tuple[int, str] | None:
    failure = validate(body, command.params)
    if failure is None and command.check is not None:
        failure = command.check(body)
    return failure


def _kv_handler(suffix: str, command: _DataCommand) -> Handler:
    rsp = f"KV_{suffix}_RSP"

    def handle(state: ServerState, body: RequestBody) -> Reply:
        failure = _failure(command, body)
        if failure is not None:
            return command_error(rsp, *failure)
        return reply(rsp, Status.OK, **command.run(state.store, body))

    return handle


def _sh_handler(suffix: str, command: _DataCommand) -> Handler:
    rsp = f"SH_{suffix}_RSP"

    def handle(state: ServerState, body: RequestBody) -> Reply:
        failure = _failure(command, body)
        if failure is not None:
            return command_error(rsp, *failure)
        token = token_of(body.get("tkn"))
        session = state.sessions.get(token) if token is not None else None
        if session is None:
            return command_error(rsp, Status.SESSION_NOT_EXIST)
        if command.extend is not None:
            command.extend(state.sessions, session)
        return reply(rsp, Status.OK, **command.run(session.data, body))

    return handle


def kv_handlers() -> dict[str, Handler]:
    """``KV_SET`` ... ``KV_CLEAR_SET`` on the KV store."""
    return {f"KV_{suffix}": _kv_handler(suffix, command) for suffix, command in _COMMANDS.items()}


def sh_handlers() -> dict[str, Handler]:
    """``SH_SET`` ... ``SH_CLEAR_SET`` on a session's map."""
    return {f"SH_{suffix}": _sh_handler(suffix, command) for suffix, command in _COMMANDS.items()}
