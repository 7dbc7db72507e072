"""The command surface: one function per client method, shared by every transport.

Each function checks its arguments (raising TypeError/ValueError that names the parameter) and
returns a `Request` holding the encoded command and the function that reads its reply. The
asyncio, trio and blocking clients are generated from these signatures and docstrings
(``ndb_transports/_generate.py``), so a command is written here and nowhere else.

Names, argument order, defaults and return shapes are those of NemesisDB's own Python client;
``kv_find``, ``kv_update`` and ``kv_arr_append`` are additions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypedDict

from ndb_proto import commands as c
from ndb_proto.commands import (
    Body,
    ReplyShapeError,
    Request,
    echoing,
    ignore,
    keys_within,
    member,
    one_key,
    subsequence_of,
    without_status,
)
from ndb_proto.session import Session
from ndb_proto.validate import (
    TOKEN_MAX,
    check_bool,
    check_dataset_name,
    check_duration,
    check_json,
    check_key_list,
    check_keys_object,
    check_list,
    check_str,
    check_token,
    check_token_list,
)

Token = int | Session


class ServerInfo(TypedDict):
    persistEnabled: bool
    serverVersion: str


class SessionExpiry(TypedDict):
    duration: int
    remaining: int
    deleteSession: bool
    extendOnSetAdd: bool
    extendOnGet: bool


class _SessionInfoBase(TypedDict):
    tkn: int
    keyCnt: int
    shared: bool
    expires: bool


class SessionInfo(_SessionInfoBase, total=False):
    expiry: SessionExpiry
    """Present only when the session expires."""


class SessionsSummary(TypedDict):
    totalSessions: int
    totalKeys: int


class SessionsLoaded(TypedDict):
    name: str
    sessions: int
    keys: int


def _members_check(**shape: type) -> Callable[[Body], None]:
    """Raise `ReplyShapeError` unless every member in ``shape`` is there with its JSON type."""
    readers: tuple[Callable[[Body], object], ...] = tuple(
        member(name, kind) for name, kind in shape.items()
    )

    def check(body: Body) -> None:
        for read in readers:
            read(body)

    return check


def _info(**shape: type) -> Callable[[Body], Any]:
    """An info reply, returned as its body without ``st`` (as NemesisDB's Python client does)
    once the members its result type promises are there with their JSON types."""
    check = _members_check(**shape)

    def read(body: Body) -> Body:
        check(body)
        return without_status(body)

    return read


_session_members = _info(tkn=int, keyCnt=int, shared=bool, expires=bool)
_expiry_members = _members_check(
    duration=int, remaining=int, deleteSession=bool, extendOnSetAdd=bool, extendOnGet=bool
)
_expiry = member("expiry", dict)


def _session_info(body: Body) -> SessionInfo:
    """SH_INFO: ``expiry`` is there, complete, exactly when the session expires."""
    info: SessionInfo = _session_members(body)
    if info["expires"]:
        _expiry_members(_expiry(body))
    elif "expiry" in info:
        raise ReplyShapeError("reply member 'expiry' is there for a session that never expires")
    return info


_cnt = member("cnt", int)
_sessions_summary: Callable[[Body], SessionsSummary] = _info(totalSessions=int, totalKeys=int)
_sessions_loaded: Callable[[Body], SessionsLoaded] = _info(name=str, sessions=int, keys=int)
_server_info: Callable[[Body], ServerInfo] = _info(persistEnabled=bool, serverVersion=str)
_keys_list = member("keys", list)
_keys_dict = member("keys", dict)


def _check_key_or_keys(keys: Iterable[str], key: str | None) -> list[str]:
    names = check_key_list(keys, "keys")
    if key is None:
        return names
    if names:
        raise ValueError("keys and key are both given; pass one of them")
    return [check_str(key, "key")]


# --- KV ------------------------------------------------------------------------------------


def kv_set(keys: Mapping[str, Any]) -> Request[None]:
    """Store every key of ``keys``, overwriting existing values."""
    return c.KV_SET.request({"keys": check_keys_object(keys, "keys")}, ignore)


def kv_add(keys: Mapping[str, Any]) -> Request[None]:
    """Store the keys of ``keys`` that do not exist yet; existing values are left alone."""
    return c.KV_ADD.request({"keys": check_keys_object(keys, "keys")}, ignore)


def kv_get(keys: Iterable[str] = (), key: str | None = None) -> Request[Any]:
    """Read keys. With ``keys``: a dict of the keys that exist. With ``key``: its value, or None
    when it does not exist."""
    names = _check_key_or_keys(keys, key)
    result = keys_within(names) if key is None else one_key(key)
    return c.KV_GET.request({"keys": names}, result)


def kv_rmv(keys: Iterable[str]) -> Request[None]:
    """Remove keys; names that do not exist are ignored."""
    return c.KV_RMV.request({"keys": check_key_list(keys, "keys", allow_empty=False)}, ignore)


def kv_count() -> Request[int]:
    """The number of keys in the KV store (session keys are not counted)."""
    return c.KV_COUNT.request({}, _cnt)


def kv_contains(keys: Iterable[str]) -> Request[list[str]]:
    """The names among ``keys`` that exist, in request order (repeats kept)."""
    names = check_key_list(keys, "keys")
    return c.KV_CONTAINS.request({"keys": names}, subsequence_of("contains", names))


def kv_keys() -> Request[list[str]]:
    """Every key name in the KV store, in no particular order."""
    return c.KV_KEYS.request({}, _keys_list)


def kv_clear() -> Request[int]:
    """Remove every key; returns how many were removed."""
    return c.KV_CLEAR.request({}, _cnt)


def kv_clear_set(keys: Mapping[str, Any]) -> Request[int]:
    """Remove every key, then store ``keys``; returns how many were removed (not set)."""
    return c.KV_CLEAR_SET.request({"keys": check_keys_object(keys, "keys")}, _cnt)


def kv_save(name: str) -> Request[None]:
    """Save the KV store as dataset ``name`` on the server (needs persistence enabled)."""
    name = check_dataset_name(name, "name")
    return c.KV_SAVE.request({"name": name}, echoing("name", name, ignore))


def kv_load(name: str) -> Request[int]:
    """Load dataset ``name`` into the KV store; returns the number of keys loaded (0 for a
    dataset saved from an empty store)."""
    name = check_dataset_name(name, "name")
    return c.KV_LOAD.request({"name": name}, echoing("name", name, member("keys", int)))


_FIND_RESULTS = {"keys": _keys_list, "paths": member("paths", list), "kv": _keys_dict}


def kv_find(
    path: str, rsp: Literal["keys", "paths", "kv"] = "keys", keys: Iterable[str] | None = None
) -> Request[Any]:
    """Find values matching the JSONPath ``path`` (``$`` is each key's value).

    ``rsp="keys"``: the matching key names; ``"paths"``: the normalised paths of every matched
    node (without key names); ``"kv"``: a dict of each matching key and its whole value.
    ``keys`` limits the search to those keys.
    """
    params: Body = {"path": check_str(path, "path"), "rsp": check_str(rsp, "rsp")}
    if not path:
        raise ValueError("path must not be empty")
    if rsp not in _FIND_RESULTS:
        raise ValueError(f"rsp must be 'keys', 'paths' or 'kv', got {rsp!r}")
    result = _FIND_RESULTS[rsp]
    if keys is not None:
        names = params["keys"] = check_key_list(keys, "keys")
        if not names:
            pass  # [] searches every key, like no keys at all
        elif rsp == "keys":
            result = subsequence_of("keys", names)
        elif rsp == "kv":
            result = keys_within(names)
    return c.KV_FIND.request(params, result)


def kv_update(key: str, path: str, value: Any) -> Request[int]:
    """Replace every node matching the JSONPath ``path`` in ``key``'s value with ``value``;
    returns how many nodes were replaced. Members that do not exist are not created."""
    params = {
        "key": check_str(key, "key"),
        "path": check_str(path, "path"),
        "value": check_json(value, "value"),
    }
    if not path:
        raise ValueError("path must not be empty")
    return c.KV_UPDATE.request(params, _cnt)


def kv_arr_append(key: str, items: Iterable[Any], name: str | None = None) -> Request[None]:
    """Append ``items`` to the array stored at ``key`` or, with ``name``, to the array member
    ``name`` of the object stored at ``key``."""
    values = check_json(check_list(items, "items", "JSON values"), "items")
    params: Body = {"items": values, "key": check_str(key, "key")}
    if name is not None:
        params["name"] = check_str(name, "name")
    return c.KV_ARR_APPEND.request(params, ignore)


# --- sessions ------------------------------------------------------------------------------


_new_token = member("tkn", int)


def _new_session(body: Body) -> Session:
    token = _new_token(body)
    if not 0 <= token <= TOKEN_MAX:  # a Session every later call would refuse
        raise ReplyShapeError(f"reply member 'tkn' should be in 0..2**64-1, got {token}")
    return Session(token)


def sh_create(
    durationSeconds: int = 0,
    deleteSessionOnExpire: bool = False,
    extendOnSetAdd: bool = False,
    extendOnGet: bool = False,
) -> Request[Session]:
    """Create a session. With ``durationSeconds`` > 0 it expires: it is deleted
    (``deleteSessionOnExpire``) or emptied, and its time is renewed by set/add
    (``extendOnSetAdd``) or get (``extendOnGet``)."""
    duration = check_duration(durationSeconds, "durationSeconds")
    flags = {
        "deleteSession": check_bool(deleteSessionOnExpire, "deleteSessionOnExpire"),
        "extendOnSetAdd": check_bool(extendOnSetAdd, "extendOnSetAdd"),
        "extendOnGet": check_bool(extendOnGet, "extendOnGet"),
    }
    if duration == 0:
        if any(flags.values()):
            raise ValueError(
                "durationSeconds is 0 (never expires), so deleteSessionOnExpire, "
                "extendOnSetAdd and extendOnGet would have no effect"
            )
        return c.SH_NEW.request({}, _new_session)
    return c.SH_NEW.request({"expiry": {"duration": duration, **flags}}, _new_session)


def sh_end(tkn: Token) -> Request[None]:
    """End a session and delete its keys."""
    token = check_token(tkn, "tkn")
    return c.SH_END.request({"tkn": token}, echoing("tkn", token, ignore))


def sh_end_all() -> Request[int]:
    """End every session; returns how many were ended."""
    return c.SH_END_ALL.request({}, _cnt)


def sh_session_exists(tkns: Iterable[Token]) -> Request[list[int]]:
    """The tokens among ``tkns`` whose sessions exist, in request order."""
    tokens = check_token_list(tkns, "tkns")
    return c.SH_EXISTS.request({"tkns": tokens}, subsequence_of("exist", tokens, int))


def sh_info(tkn: Token) -> Request[SessionInfo]:
    """A session's key count and expiry settings (the reply without ``st``)."""
    token = check_token(tkn, "tkn")
    return c.SH_INFO.request({"tkn": token}, echoing("tkn", token, _session_info))


def sh_info_all() -> Request[SessionsSummary]:
    """The number of sessions and of keys across all sessions."""
    return c.SH_INFO_ALL.request({}, _sessions_summary)


def sh_save(name: str, tkns: Iterable[Token] = ()) -> Request[None]:
    """Save every session, or only those in ``tkns``, as dataset ``name``."""
    params: Body = {"name": check_dataset_name(name, "name")}
    tokens = check_token_list(tkns, "tkns")
    if tokens:
        params["tkns"] = tokens
    return c.SH_SAVE.request(params, echoing("name", params["name"], ignore))


def sh_load(name: str) -> Request[SessionsLoaded]:
    """Load the sessions of dataset ``name``; sessions that already exist are left alone.
    Returns ``name``, ``sessions`` and ``keys`` loaded."""
    name = check_dataset_name(name, "name")
    return c.SH_LOAD.request({"name": name}, echoing("name", name, _sessions_loaded))


def sh_set(tkn: Token, keys: Mapping[str, Any]) -> Request[None]:
    """Store keys in a session, overwriting existing values."""
    params = {"keys": check_keys_object(keys, "keys"), "tkn": check_token(tkn, "tkn")}
    return c.SH_SET.request(params, ignore)


def sh_add(tkn: Token, keys: Mapping[str, Any]) -> Request[None]:
    """Store the keys that do not exist yet in a session."""
    params = {"keys": check_keys_object(keys, "keys"), "tkn": check_token(tkn, "tkn")}
    return c.SH_ADD.request(params, ignore)


def sh_get(tkn: Token, keys: Iterable[str] = (), key: str | None = None) -> Request[Any]:
    """Read session keys: a dict of those that exist, or with ``key`` its value or None."""
    names = _check_key_or_keys(keys, key)
    result = keys_within(names) if key is None else one_key(key)
    return c.SH_GET.request({"keys": names, "tkn": check_token(tkn, "tkn")}, result)


def sh_rmv(tkn: Token, keys: Iterable[str]) -> Request[None]:
    """Remove keys from a session."""
    params = {
        "keys": check_key_list(keys, "keys", allow_empty=False),
        "tkn": check_token(tkn, "tkn"),
    }
    return c.SH_RMV.request(params, ignore)


def sh_count(tkn: Token) -> Request[int]:
    """The number of keys in a session."""
    return c.SH_COUNT.request({"tkn": check_token(tkn, "tkn")}, _cnt)


def sh_contains(tkn: Token, keys: Iterable[str]) -> Request[list[str]]:
    """The names among ``keys`` that exist in a session, in request order."""
    names = check_key_list(keys, "keys")
    params = {"keys": names, "tkn": check_token(tkn, "tkn")}
    return c.SH_CONTAINS.request(params, subsequence_of("contains", names))


def sh_keys(tkn: Token) -> Request[list[str]]:
    """Every key name in a session."""
    return c.SH_KEYS.request({"tkn": check_token(tkn, "tkn")}, _keys_list)


def sh_clear(tkn: Token) -> Request[int]:
    """Remove every key of a session; returns how many were removed."""
    return c.SH_CLEAR.request({"tkn": check_token(tkn, "tkn")}, _cnt)


def sh_clear_set(tkn: Token, keys: Mapping[str, Any]) -> Request[int]:
    """Remove every key of a session, then store ``keys``; returns how many were removed."""
    params = {"keys": check_keys_object(keys, "keys"), "tkn": check_token(tkn, "tkn")}
    return c.SH_CLEAR_SET.request(params, _cnt)


# --- server --------------------------------------------------------------------------------


def sv_info() -> Request[ServerInfo]:
    """The server version and whether persistence (save) is enabled."""
    return c.SV_INFO.request({}, _server_info)


SURFACE = (
    kv_set, kv_add, kv_get, kv_rmv, kv_count, kv_contains, kv_keys, kv_clear, kv_clear_set,
    kv_save, kv_load, kv_find, kv_update, kv_arr_append,
    sh_create, sh_end, sh_end_all, sh_session_exists, sh_info, sh_info_all, sh_save, sh_load,
    sh_set, sh_add, sh_get, sh_rmv, sh_count, sh_contains, sh_keys, sh_clear, sh_clear_set,
    sv_info,
)  # fmt: skip
"""The client methods, in the order the generated clients list them."""
