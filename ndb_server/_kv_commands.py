"""Handlers for the KV-only commands: FIND, UPDATE, ARR_APPEND, SAVE and LOAD (docs/protocol.md §7).

An exception escaping one of these handlers becomes ``{"ERR":{"m":"","st":1000}}`` in the
dispatcher, as in the server: that is how an invalid path reaches ``KV_UPDATE``'s client and how
a corrupt dataset reaches ``KV_LOAD``'s.
"""

from __future__ import annotations

from typing import cast

from jsonpath_rfc9535 import JSONPathQuery

from ndb_proto.status import Status
from ndb_server import _kv
from ndb_server._data_commands import kv_handlers
from ndb_server._jsonpath import compile_path
from ndb_server._persist import KV_DATA, DatasetMissing, data_files, kv_data_files, read_data_file
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
from ndb_server._state import Handler, ServerState, elapsed_ms, save_reply

__all__ = ["KV_COMMANDS"]

_FIND_PARAMS = declare(
    Param("keys", Kind.ARRAY, required=False),
    Param("path", Kind.STRING),
    Param("rsp", Kind.STRING),
)
_FIND_MODES = frozenset({"keys", "paths", "kv"})


def kv_find(state: ServerState, body: RequestBody) -> Reply:
    """Keys, node paths or whole values of the keys whose value matches a JSONPath."""
    rsp = "KV_FIND_RSP"
    failure = validate(body, _FIND_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    path, mode = cast(str, body["path"]), cast(str, body["rsp"])
    if mode not in _FIND_MODES:
        return command_error(rsp, Status.COMMAND_SYNTAX, "'rsp' invalid value")
    if path == "":
        return command_error(rsp, Status.VALUE_SIZE, "'path' is empty")
    query: JSONPathQuery | None
    try:
        query = compile_path(path)
    except Exception:  # any compile failure; it only matters once a value is evaluated
        query = None
    try:
        found = _kv.find(state.store, cast("list[object] | None", body.get("keys")), query)
    except Exception:
        return reply(rsp, Status.PATH_INVALID)
    if mode == "keys":
        return reply(rsp, Status.OK, keys=found.keys)
    if mode == "paths":
        return reply(rsp, Status.OK, paths=found.paths)
    return reply(rsp, Status.OK, keys=found.values)


_UPDATE_PARAMS = declare(
    Param("key", Kind.STRING), Param("path", Kind.STRING), Param("value", Kind.ANY)
)


def kv_update(state: ServerState, body: RequestBody) -> Reply:
    """Replace every node a JSONPath matches in one key's value; an invalid path raises."""
    rsp = "KV_UPDATE_RSP"
    failure = validate(body, _UPDATE_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    key, path = cast(str, body["key"]), cast(str, body["path"])
    if key not in state.store:
        return reply(rsp, Status.KEY_NOT_EXIST, cnt=0)
    count = _kv.update(state.store, key, compile_path(path), body["value"])
    return reply(rsp, Status.OK, cnt=count)


_APPEND_PARAMS = declare(
    Param("items", Kind.ARRAY),
    Param("key", Kind.STRING),
    Param("name", Kind.STRING, required=False),
)


def kv_arr_append(state: ServerState, body: RequestBody) -> Reply:
    """Append items to an array value, or to an array member of an object value."""
    rsp = "KV_ARR_APPEND_RSP"
    failure = validate(body, _APPEND_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    key = cast(str, body["key"])
    if key not in state.store:
        return reply(rsp, Status.KEY_NOT_EXIST)
    try:
        _kv.arr_append(
            state.store,
            key,
            cast("str | None", body.get("name")),
            cast("list[object]", body["items"]),
        )
    except _kv.NotAppendable:
        return reply(rsp, Status.UNKNOWN)
    return reply(rsp, Status.OK)


_NAME_PARAMS = declare(Param("name", Kind.STRING))


def kv_save(state: ServerState, body: RequestBody) -> Reply:
    """Save the whole KV store as dataset ``name`` (status 14 when persistence is off)."""
    rsp = "KV_SAVE_RSP"
    if state.persist_root is None:
        return reply(rsp, Status.COMMAND_DISABLED, m="")
    failure = validate(body, _NAME_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    return save_reply(state, rsp, cast(str, body["name"]), KV_DATA, kv_data_files(state.store))


def kv_load(state: ServerState, body: RequestBody) -> Reply:
    """Set every key of dataset ``name``'s newest save into the KV store."""
    rsp = "KV_LOAD_RSP"
    failure = validate(body, _NAME_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    name = cast(str, body["name"])
    started = state.clock()
    try:
        files = data_files(state.persist_root, name)  # DatasetBroken escapes: ERR 1000
    except DatasetMissing:
        return reply(rsp, Status.LOAD_ERROR, name=name)
    if not files:
        return reply(
            rsp, Status.LOADING, duration=elapsed_ms(state, started), keys=0, name=name, sessions=0
        )
    loaded, status = 0, Status.LOAD_COMPLETE
    for path in files:
        try:
            document = read_data_file(path)
        except (OSError, ValueError):
            status = Status.LOAD_ERROR
            break
        # A session dataset's files are arrays: they hold no "keys" and load nothing (st 141).
        keys = document.get("keys") if isinstance(document, dict) else None
        if isinstance(keys, dict):
            state.store.update(keys)
            loaded += len(keys)
    return reply(
        rsp, status, duration=elapsed_ms(state, started), keys=loaded, name=name, sessions=0
    )


KV_COMMANDS: dict[str, Handler] = {
    **kv_handlers(),
    "KV_FIND": kv_find,
    "KV_UPDATE": kv_update,
    "KV_ARR_APPEND": kv_arr_append,
    "KV_SAVE": kv_save,
    "KV_LOAD": kv_load,
}
"""Every ``KV_*`` command 0.7.4 knows (``KV_SETQ``/``KV_ADDQ`` are deliberately absent)."""
