"""Handlers for the session-management commands (docs/protocol.md §9.3-§9.10).

``SH_NEW``, ``SH_END``, ``SH_INFO``, ``SH_INFO_ALL``, ``SH_EXISTS``, ``SH_END_ALL``, ``SH_SAVE`` and
``SH_LOAD``; the session data commands come from ``_data_commands``. An exception escaping one
of these handlers becomes ``{"SH_x_RSP":{"m":"","st":1000,"tkn":null}}`` in the dispatcher.
"""

from __future__ import annotations

from typing import Final, cast

from ndb_proto.status import Status
from ndb_server._data_commands import sh_handlers
from ndb_server._persist import (
    SESSION_DATA,
    DatasetMissing,
    data_files,
    read_data_file,
    session_data_files,
)
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
from ndb_server._sessions import Expiry, StoredSession
from ndb_server._state import Handler, ServerState, save_reply, token_of
from ndb_server._wirejson import U64_MAX, is_u64

__all__ = ["SH_COMMANDS"]

_TOKEN_ATTEMPTS: Final = 16
"""New tokens tried before ``SH_NEW`` gives up with 103 (each collision has odds ~n/2**64)."""

_NEW_PARAMS = declare(Param("expiry", Kind.OBJECT, required=False))
_EXPIRY_PARAMS = declare(
    Param("deleteSession", Kind.BOOL, required=False),
    Param("duration", Kind.UINT64),
    Param("extendOnGet", Kind.BOOL, required=False),
    Param("extendOnSetAdd", Kind.BOOL, required=False),
)


def _expiry_from(settings: dict[str, object]) -> Expiry:
    return Expiry(
        duration=cast(int, settings["duration"]),
        delete_session=settings.get("deleteSession") is True,
        extend_on_get=settings.get("extendOnGet") is True,
        extend_on_set_add=settings.get("extendOnSetAdd") is True,
    )


def sh_new(state: ServerState, body: RequestBody) -> Reply:
    """Create a session with a fresh random token."""
    rsp = "SH_NEW_RSP"
    failure = validate(body, _NEW_PARAMS)
    settings = cast("dict[str, object] | None", body.get("expiry"))
    if failure is None and settings is not None:
        failure = validate(settings, _EXPIRY_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    expiry = _expiry_from(settings) if settings is not None else Expiry()
    token = 0
    for _ in range(_TOKEN_ATTEMPTS):
        token = state.token_source() & U64_MAX
        if token not in state.sessions:
            state.sessions.create(token, expiry)
            return reply(rsp, Status.OK, tkn=token)
    return reply(rsp, Status.SESSION_NEW_FAIL, tkn=token)


def sh_end(state: ServerState, body: RequestBody) -> Reply:
    """Delete a session and its keys now."""
    rsp = "SH_END_RSP"
    token = token_of(body.get("tkn"))
    if token is None:
        return command_error(rsp, Status.SESSION_NOT_EXIST)
    if not state.sessions.end(token):
        return reply(rsp, Status.SESSION_NOT_EXIST, tkn=token)
    return reply(rsp, Status.OK, tkn=token)


def sh_info(state: ServerState, body: RequestBody) -> Reply:
    """Key count, shared flag and expiry state of one session; does not extend it."""
    rsp = "SH_INFO_RSP"
    if len(body) != 1:
        return command_error(rsp, Status.COMMAND_SYNTAX)
    token = token_of(body.get("tkn"))
    if token is None:
        return command_error(rsp, Status.SESSION_NOT_EXIST)
    session = state.sessions.get(token)
    if session is None:
        return reply(rsp, Status.SESSION_NOT_EXIST, keyCnt=None, shared=None, tkn=token)
    members: dict[str, object] = {
        "expires": session.expiry.expires,
        "keyCnt": len(session.data),
        "shared": session.shared,
        "tkn": token,
    }
    if session.expiry.expires:
        members["expiry"] = {
            "deleteSession": session.expiry.delete_session,
            "duration": session.expiry.duration,
            "extendOnGet": session.expiry.extend_on_get,
            "extendOnSetAdd": session.expiry.extend_on_set_add,
            "remaining": state.sessions.remaining(session),
        }
    return reply(rsp, Status.OK, **members)


def sh_info_all(state: ServerState, _body: RequestBody) -> Reply:
    """Session count and key count over all sessions."""
    sessions = state.sessions
    return reply(
        "SH_INFO_ALL_RSP", Status.OK, totalKeys=sessions.total_keys(), totalSessions=len(sessions)
    )


_TKNS_PARAMS = declare(Param("tkns", Kind.ARRAY))


def sh_exists(state: ServerState, body: RequestBody) -> Reply:
    """The listed tokens that name existing sessions, in request order."""
    rsp = "SH_EXISTS_RSP"
    failure = validate(body, _TKNS_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    tokens = [token_of(item) for item in cast("list[object]", body["tkns"])]
    return reply(
        rsp, Status.OK, exist=[tkn for tkn in tokens if tkn is not None and tkn in state.sessions]
    )


def sh_end_all(state: ServerState, _body: RequestBody) -> Reply:
    """Delete every session."""
    return reply("SH_END_ALL_RSP", Status.OK, cnt=state.sessions.end_all())


_SAVE_PARAMS = declare(Param("name", Kind.STRING), Param("tkns", Kind.ARRAY, required=False))


def _record(session: StoredSession) -> dict[str, object]:
    """How a session is written in a data file (the remaining time is not saved)."""
    expiry = session.expiry
    return {
        "keys": session.data,
        "sh": {
            "expiry": {
                "deleteSession": expiry.delete_session,
                "duration": expiry.duration,
                "extendOnGet": expiry.extend_on_get,
                "extendOnSetAdd": expiry.extend_on_set_add,
            },
            "shared": session.shared,
            "tkn": session.token,
        },
    }


def sh_save(state: ServerState, body: RequestBody) -> Reply:
    """Save every session, or the listed existing ones, as dataset ``name``."""
    rsp = "SH_SAVE_RSP"
    if state.persist_root is None:
        return reply(rsp, Status.COMMAND_DISABLED, m="")
    failure = validate(body, _SAVE_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    listed = cast("list[object] | None", body.get("tkns"))
    if listed is None:
        selected = list(state.sessions)
    elif not listed:
        return command_error(rsp, Status.VALUE_SIZE, "'tkns' empty")
    elif not all(is_u64(item) for item in listed):
        return command_error(rsp, Status.VALUE_TYPE_INVALID, "'tkns' contains invalid token")
    else:
        found = (state.sessions.get(cast(int, item)) for item in dict.fromkeys(listed))
        selected = [session for session in found if session is not None]
    files = session_data_files(_record(session) for session in selected)
    return save_reply(state, rsp, cast(str, body["name"]), SESSION_DATA, files)


_NAME_PARAMS = declare(Param("name", Kind.STRING))


def _session_from(record: object) -> tuple[int, Expiry, bool, dict[str, object]] | None:
    """Token, expiry, shared flag and keys of one saved session, or None if malformed."""
    if not isinstance(record, dict):
        return None
    keys, meta = record.get("keys"), record.get("sh")
    if not isinstance(keys, dict) or not isinstance(meta, dict):
        return None
    token, shared, settings = meta.get("tkn"), meta.get("shared", False), meta.get("expiry")
    if not is_u64(token) or not isinstance(shared, bool) or not isinstance(settings, dict):
        return None
    if validate(settings, _EXPIRY_PARAMS) is not None:
        return None
    return cast(int, token), _expiry_from(settings), shared, keys


def sh_load(state: ServerState, body: RequestBody) -> Reply:
    """Recreate the sessions of dataset ``name``'s newest save; existing tokens are skipped."""
    rsp = "SH_LOAD_RSP"
    failure = validate(body, _NAME_PARAMS)
    if failure is not None:
        return command_error(rsp, *failure)
    name = cast(str, body["name"])
    try:
        files = data_files(state.persist_root, name)  # DatasetBroken escapes: st 1000
    except DatasetMissing:
        return reply(rsp, Status.LOAD_ERROR, name=name)
    sessions = keys = 0
    status = Status.LOAD_COMPLETE if files else Status.LOAD_ERROR  # no data file: 142, not 141
    for path in files:
        try:
            document = read_data_file(path)
        except (OSError, ValueError):
            status = Status.LOAD_ERROR
            break
        records = document if isinstance(document, list) else [None]  # a KV dataset: 142
        for record in records:
            parsed = _session_from(record)
            if parsed is None:
                status = Status.LOAD_ERROR
                break
            token, expiry, shared, data = parsed
            if token in state.sessions:
                continue
            state.sessions.create(token, expiry, shared=shared, data=data)
            sessions += 1
            keys += len(data)
        if status != Status.LOAD_COMPLETE:
            break
    return reply(rsp, status, keys=keys, name=name, sessions=sessions)


SH_COMMANDS: dict[str, Handler] = {
    **sh_handlers(),
    "SH_NEW": sh_new,
    "SH_END": sh_end,
    "SH_INFO": sh_info,
    "SH_INFO_ALL": sh_info_all,
    "SH_EXISTS": sh_exists,
    "SH_END_ALL": sh_end_all,
    "SH_SAVE": sh_save,
    "SH_LOAD": sh_load,
}
"""Every ``SH_*`` command 0.7.4 knows."""
