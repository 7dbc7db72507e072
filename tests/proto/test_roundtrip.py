"""Round trips for every function of ``ndb_proto.calls.SURFACE``.

With random keys and values (any Unicode including astral characters, integers at the i64/u64
edges, floats, nesting up to ``codec.MAX_VALUE_DEPTH``): the text the client writes decodes, with
the stdlib ``json`` module, to exactly the parameters given (types included), and a reply built
from those values, framed by a fake server and decoded by the client, gives the expected result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ndb_proto import calls
from ndb_proto.codec import INT_MAX, INT_MIN, MAX_VALUE_DEPTH
from ndb_proto.events import ReplyReceived
from ndb_proto.session import Session
from ndb_proto.validate import DURATION_MAX, TOKEN_MAX
from tests.proto.helpers import budget, open_client, pump


@dataclass
class Case:
    call: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    command: str
    params: dict[str, Any]  # what the server must receive
    reply: dict[str, Any]  # the reply body (``st`` included)
    result: Any  # what the call must return


def same(a: Any, b: Any) -> bool:
    """JSON equality that also tells int, float and bool apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def nest(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


ints = st.one_of(
    st.integers(INT_MIN, INT_MAX),
    st.sampled_from([INT_MIN, INT_MIN + 1, -1, 0, 1, 2**53 + 1, 2**63 - 1, 2**63, INT_MAX]),
)
strings = st.text(st.characters(codec="utf-8"), max_size=10) | st.sampled_from(
    ["", "🙂", "\U0010ffff", '\x00\x1f"\\/', "é€𝄞"]
)
scalars = (
    st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | strings
)
trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=12,
)
values = trees | st.builds(nest, st.integers(1, MAX_VALUE_DEPTH), scalars)
# The depth limit applies to a parameter as a whole: KV_ARR_APPEND's ``items`` list is one level.
items = trees | st.builds(nest, st.integers(1, MAX_VALUE_DEPTH - 1), scalars)
keys_objects = st.dictionaries(strings, values, max_size=4)
key_lists = st.lists(strings, max_size=4)
tokens = st.integers(0, TOKEN_MAX) | st.sampled_from([0, 2**63, TOKEN_MAX])
token_args = tokens | st.builds(Session, tokens)
counts = st.integers(0, INT_MAX)
names = strings.filter(lambda s: s and not any(b in s for b in ("/", "\\", "\x00", "..")))
paths = strings.filter(bool)


def tkn(arg: int | Session) -> int:
    return arg.tkn if isinstance(arg, Session) else arg


def without_st(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "st"}


def subsequence(draw: st.DrawFn, items: list[Any]) -> list[Any]:
    """Some of ``items``, in their order: what a reply holds for the items it was asked."""
    return [item for item in items if draw(st.booleans())]


@st.composite
def get_case(draw: st.DrawFn, call: Callable[..., Any], session: bool) -> Case:
    prefix: tuple[Any, ...] = (draw(token_args),) if session else ()
    command = "SH_GET" if session else "KV_GET"
    extra = {"tkn": tkn(prefix[0])} if session else {}
    if draw(st.booleans()):
        key = draw(strings)
        value = draw(values)
        hit = draw(st.booleans())
        reply = {"keys": {key: value} if hit else {}, "st": 1}
        return Case(
            call, prefix, {"key": key}, command, {"keys": [key], **extra}, reply,
            value if hit else None,
        )  # fmt: skip
    keys = draw(key_lists)
    found = {name: draw(values) for name in subsequence(draw, keys)}
    return Case(
        call, (*prefix, keys), {}, command, {"keys": keys, **extra}, {"keys": found, "st": 1}, found
    )


@st.composite
def keys_case(
    draw: st.DrawFn, call: Callable[..., Any], command: str, session: bool, counted: bool
) -> Case:
    keys = draw(keys_objects)
    prefix: tuple[Any, ...] = (draw(token_args),) if session else ()
    params: dict[str, Any] = {"keys": keys}
    if session:
        params["tkn"] = tkn(prefix[0])
    cnt = draw(counts)
    reply = {"cnt": cnt, "st": 1} if counted else {"st": 1}
    return Case(call, (*prefix, keys), {}, command, params, reply, cnt if counted else None)


@st.composite
def list_case(
    draw: st.DrawFn, call: Callable[..., Any], command: str, session: bool, member: str | None
) -> Case:
    keys = draw(key_lists.filter(bool) if member is None else key_lists)
    prefix: tuple[Any, ...] = (draw(token_args),) if session else ()
    params: dict[str, Any] = {"keys": keys}
    if session:
        params["tkn"] = tkn(prefix[0])
    if member is None:
        return Case(call, (*prefix, keys), {}, command, params, {"st": 1}, None)
    found = subsequence(draw, keys)
    return Case(call, (*prefix, keys), {}, command, params, {member: found, "st": 1}, found)


@st.composite
def token_case(draw: st.DrawFn, call: Callable[..., Any], command: str, kind: str) -> Case:
    arg = draw(token_args)
    params = {"tkn": tkn(arg)}
    if kind == "cnt":
        cnt = draw(counts)
        return Case(call, (arg,), {}, command, params, {"cnt": cnt, "st": 1}, cnt)
    if kind == "keys":
        found = draw(key_lists)
        return Case(call, (arg,), {}, command, params, {"keys": found, "st": 1}, found)
    if kind == "end":
        return Case(call, (arg,), {}, command, params, {"st": 1, "tkn": tkn(arg)}, None)
    expires = draw(st.booleans())
    body: dict[str, Any] = {
        "expires": expires,
        "keyCnt": draw(counts),
        "shared": False,
        "st": 1,
        "tkn": tkn(arg),
    }
    if expires:
        body["expiry"] = {
            "deleteSession": draw(st.booleans()),
            "duration": draw(st.integers(1, DURATION_MAX)),
            "extendOnGet": draw(st.booleans()),
            "extendOnSetAdd": draw(st.booleans()),
            "remaining": draw(st.integers(-5, DURATION_MAX)),
        }
    return Case(call, (arg,), {}, command, params, body, without_st(body))


@st.composite
def empty_case(draw: st.DrawFn, call: Callable[..., Any], command: str, kind: str) -> Case:
    if kind == "cnt":
        cnt = draw(counts)
        return Case(call, (), {}, command, {}, {"cnt": cnt, "st": 1}, cnt)
    if kind == "keys":
        found = draw(key_lists)
        return Case(call, (), {}, command, {}, {"keys": found, "st": 1}, found)
    if kind == "summary":
        body: dict[str, Any] = {"st": 1, "totalKeys": draw(counts), "totalSessions": draw(counts)}
        return Case(call, (), {}, command, {}, body, without_st(body))
    body = {"persistEnabled": draw(st.booleans()), "serverVersion": draw(strings), "st": 1}
    return Case(call, (), {}, command, {}, body, without_st(body))


@st.composite
def dataset_case(draw: st.DrawFn, call: Callable[..., Any], command: str) -> Case:
    name = draw(names)
    params: dict[str, Any] = {"name": name}
    args: tuple[Any, ...] = (name,)
    if command in ("KV_SAVE", "SH_SAVE"):
        body: dict[str, Any] = {"duration": draw(counts), "name": name, "st": 121}
        result: Any = None
        if command == "SH_SAVE":
            tkns = draw(st.lists(token_args, max_size=3))
            args = (name, tkns)
            if tkns:
                params["tkns"] = [tkn(t) for t in tkns]
    elif command == "KV_LOAD":
        keys = draw(counts)
        st_ = 140 if keys == 0 and draw(st.booleans()) else 141
        body = {"duration": 1, "keys": keys, "name": name, "sessions": 0, "st": st_}
        result = keys
    else:
        body = {"keys": draw(counts), "name": name, "sessions": draw(counts), "st": 141}
        result = without_st(body)
    return Case(call, args, {}, command, params, body, result)


@st.composite
def find_case(draw: st.DrawFn) -> Case:
    path, rsp = draw(paths), draw(st.sampled_from(["keys", "paths", "kv"]))
    keys = draw(st.none() | key_lists)
    params: dict[str, Any] = {"path": path, "rsp": rsp}
    if keys is not None:
        params["keys"] = keys
    if rsp == "kv":
        found: Any = (
            draw(keys_objects)
            if keys is None
            else {name: draw(values) for name in subsequence(draw, keys)}
        )
        body = {"keys": found, "st": 1}
    else:
        found = draw(key_lists) if keys is None or rsp == "paths" else subsequence(draw, keys)
        body = {rsp: found, "st": 1}
    return Case(calls.kv_find, (path, rsp, keys), {}, "KV_FIND", params, body, found)


@st.composite
def update_case(draw: st.DrawFn) -> Case:
    key, path, value, cnt = draw(strings), draw(paths), draw(values), draw(counts)
    params = {"key": key, "path": path, "value": value}
    return Case(
        calls.kv_update, (key, path, value), {}, "KV_UPDATE", params, {"cnt": cnt, "st": 1}, cnt
    )


@st.composite
def append_case(draw: st.DrawFn) -> Case:
    key, name = draw(strings), draw(st.none() | strings)
    appended = draw(st.lists(items, max_size=4))
    params: dict[str, Any] = {"items": appended, "key": key}
    if name is not None:
        params["name"] = name
    return Case(
        calls.kv_arr_append, (key, appended, name), {}, "KV_ARR_APPEND", params, {"st": 1}, None
    )


@st.composite
def create_case(draw: st.DrawFn) -> Case:
    duration = draw(st.integers(0, DURATION_MAX) | st.sampled_from([0, 1, DURATION_MAX]))
    flags = [draw(st.booleans()) for _ in range(3)] if duration else [False] * 3
    token = draw(tokens)
    params: dict[str, Any] = {}
    if duration:
        params["expiry"] = {
            "duration": duration,
            "deleteSession": flags[0],
            "extendOnSetAdd": flags[1],
            "extendOnGet": flags[2],
        }
    return Case(
        calls.sh_create, (duration, *flags), {}, "SH_NEW", params, {"st": 1, "tkn": token},
        Session(token),
    )  # fmt: skip


@st.composite
def exists_case(draw: st.DrawFn) -> Case:
    args = draw(st.lists(token_args, max_size=4))
    ints_ = [tkn(t) for t in args]
    found = subsequence(draw, ints_)
    return Case(
        calls.sh_session_exists, (args,), {}, "SH_EXISTS", {"tkns": ints_},
        {"exist": found, "st": 1}, found,
    )  # fmt: skip


c = calls
CASES: dict[str, st.SearchStrategy[Case]] = {
    "kv_set": keys_case(c.kv_set, "KV_SET", False, False),
    "kv_add": keys_case(c.kv_add, "KV_ADD", False, False),
    "kv_get": get_case(c.kv_get, False),
    "kv_rmv": list_case(c.kv_rmv, "KV_RMV", False, None),
    "kv_count": empty_case(c.kv_count, "KV_COUNT", "cnt"),
    "kv_contains": list_case(c.kv_contains, "KV_CONTAINS", False, "contains"),
    "kv_keys": empty_case(c.kv_keys, "KV_KEYS", "keys"),
    "kv_clear": empty_case(c.kv_clear, "KV_CLEAR", "cnt"),
    "kv_clear_set": keys_case(c.kv_clear_set, "KV_CLEAR_SET", False, True),
    "kv_save": dataset_case(c.kv_save, "KV_SAVE"),
    "kv_load": dataset_case(c.kv_load, "KV_LOAD"),
    "kv_find": find_case(),
    "kv_update": update_case(),
    "kv_arr_append": append_case(),
    "sh_create": create_case(),
    "sh_end": token_case(c.sh_end, "SH_END", "end"),
    "sh_end_all": empty_case(c.sh_end_all, "SH_END_ALL", "cnt"),
    "sh_session_exists": exists_case(),
    "sh_info": token_case(c.sh_info, "SH_INFO", "info"),
    "sh_info_all": empty_case(c.sh_info_all, "SH_INFO_ALL", "summary"),
    "sh_save": dataset_case(c.sh_save, "SH_SAVE"),
    "sh_load": dataset_case(c.sh_load, "SH_LOAD"),
    "sh_set": keys_case(c.sh_set, "SH_SET", True, False),
    "sh_add": keys_case(c.sh_add, "SH_ADD", True, False),
    "sh_get": get_case(c.sh_get, True),
    "sh_rmv": list_case(c.sh_rmv, "SH_RMV", True, None),
    "sh_count": token_case(c.sh_count, "SH_COUNT", "cnt"),
    "sh_contains": list_case(c.sh_contains, "SH_CONTAINS", True, "contains"),
    "sh_keys": token_case(c.sh_keys, "SH_KEYS", "keys"),
    "sh_clear": token_case(c.sh_clear, "SH_CLEAR", "cnt"),
    "sh_clear_set": keys_case(c.sh_clear_set, "SH_CLEAR_SET", True, True),
    "sv_info": empty_case(c.sv_info, "SV_INFO", "info"),
}


def test_every_surface_function_has_a_round_trip() -> None:
    assert list(CASES) == [f.__name__ for f in calls.SURFACE]


def check_case(case: Case) -> None:
    request = case.call(*case.args, **case.kwargs)
    assert request.command.name == case.command
    assume(len(request.payload) <= 8192)  # larger requests are refused (test_validation.py)
    client, server = open_client(max_message_size=8192)
    request_id = client.submit(request)
    (text,) = pump(client, server).texts
    assert same(json.loads(text), {case.command: case.params}), text
    assert text.encode() == request.payload  # one frame, exactly the encoded request
    client.receive_data(server.reply(f"{case.command}_RSP", case.reply), 1.0)
    (event,) = client.events()
    assert isinstance(event, ReplyReceived), event
    assert event.request_id == request_id
    if isinstance(case.result, Session):
        assert isinstance(event.value, Session) and event.value.tkn == case.result.tkn
        assert type(event.value.tkn) is int
    else:
        assert same(event.value, case.result), (event.value, case.result)


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip(name: str) -> None:
    @budget(50)
    @given(case=CASES[name])
    def run(case: Case) -> None:
        check_case(case)

    run()


def test_depth_limit_counts_the_items_list_of_kv_arr_append() -> None:
    calls.kv_arr_append("k", [nest(MAX_VALUE_DEPTH - 1, 1)])
    with pytest.raises(ValueError, match=f"items: nested deeper than {MAX_VALUE_DEPTH}"):
        calls.kv_arr_append("k", [nest(MAX_VALUE_DEPTH, 1)])
    calls.kv_update("k", "$", nest(MAX_VALUE_DEPTH, 1))  # a lone value may use every level
