"""Every argument rule of ``validate.py`` / ``calls.py`` / ``codec.check_value``: a bad call raises
TypeError or ValueError naming the parameter, before anything is written."""

# This file passes arguments of the wrong types on purpose.
# mypy: disable-error-code="arg-type, list-item, dict-item"

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndb_proto import calls
from ndb_proto.codec import INT_MAX, INT_MIN, MAX_VALUE_DEPTH, check_value
from ndb_proto.commands import COMMANDS, Command
from ndb_proto.errors import RequestTooLargeError
from ndb_proto.session import Session
from ndb_proto.validate import DURATION_MAX, TOKEN_MAX, check_json
from tests.proto.helpers import budget, open_client, pump


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` containers around ``leaf``, alternating lists and objects."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


NAN, INF = float("nan"), float("inf")
LONE = "\ud800"

BAD: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # keys objects (KV_SET and its relatives)
    ("set-not-mapping", lambda: calls.kv_set([("a", 1)]), TypeError, "keys must be a dict"),
    ("set-int-key", lambda: calls.kv_set({1: 2}), TypeError, "keys: key names must be str"),
    ("set-nan", lambda: calls.kv_set({"a": NAN}), ValueError, "keys['a']: nan is not a JSON"),
    ("set-inf", lambda: calls.kv_set({"a": INF}), ValueError, "keys['a']: inf is not"),
    ("set-neg-inf", lambda: calls.kv_set({"a": -INF}), ValueError, "keys['a']: -inf is not"),
    ("set-u64+1", lambda: calls.kv_set({"a": INT_MAX + 1}), ValueError, "keys['a']: integer"),
    ("set-i64-1", lambda: calls.kv_set({"a": INT_MIN - 1}), ValueError, "outside the 64-bit"),
    (
        "set-deep-int",
        lambda: calls.kv_set({"a": [{"b": 2**70}]}),
        ValueError,
        "keys['a'][0]['b']: integer",
    ),
    (
        "set-deep-nan",
        lambda: calls.kv_set({"a": ({"x": [1, NAN]},)}),
        ValueError,
        "keys['a'][0]['x'][1]: nan",
    ),
    (
        "set-nested-int-key",
        lambda: calls.kv_set({"a": {"ok": {3: 1}}}),
        TypeError,
        "keys['a']['ok']: object keys must be str, got int 3",
    ),
    ("set-set", lambda: calls.kv_set({"a": {1}}), TypeError, "keys['a']: set is not JSON"),
    ("set-bytes", lambda: calls.kv_set({"a": [b"x"]}), TypeError, "keys['a'][0]: bytes"),
    (
        "set-too-deep",
        lambda: calls.kv_set({"a": nested(MAX_VALUE_DEPTH + 1)}),
        ValueError,
        f"keys['a']: nested deeper than {MAX_VALUE_DEPTH} levels",
    ),
    ("set-lone-value", lambda: calls.kv_set({"a": LONE}), ValueError, "keys: contains a string"),
    ("set-lone-key", lambda: calls.kv_set({LONE: 1}), ValueError, "keys: contains a string"),
    ("add", lambda: calls.kv_add("a"), TypeError, "keys must be a dict"),
    ("clear-set", lambda: calls.kv_clear_set({"a": NAN}), ValueError, "keys['a']"),
    ("sh-set", lambda: calls.sh_set(1, {2: 1}), TypeError, "keys: key names"),
    ("sh-add", lambda: calls.sh_add(1, None), TypeError, "keys must be a dict"),
    ("sh-clear-set", lambda: calls.sh_clear_set(1, {"a": 2**64}), ValueError, "keys['a']"),
    # key lists
    ("get-str", lambda: calls.kv_get("abc"), TypeError, "keys must be a list or tuple"),
    ("get-bytes", lambda: calls.kv_get(b"abc"), TypeError, "keys must be a list or tuple"),
    ("get-dict", lambda: calls.kv_get({"a": 1}), TypeError, "keys must be a list or tuple"),
    ("get-int", lambda: calls.kv_get(5), TypeError, "keys must be a list or tuple"),
    ("get-item", lambda: calls.kv_get(["a", 5]), TypeError, "keys[1] must be a str key name"),
    ("get-both", lambda: calls.kv_get(["a"], key="b"), ValueError, "keys and key are both"),
    ("get-key-type", lambda: calls.kv_get(key=5), TypeError, "key must be a str"),
    ("get-key-lone", lambda: calls.kv_get(key=LONE), ValueError, "key contains a string"),
    ("get-lone", lambda: calls.kv_get([LONE]), ValueError, "keys[0] contains a string"),
    ("rmv-empty", lambda: calls.kv_rmv([]), ValueError, "keys must not be empty"),
    ("rmv-str", lambda: calls.kv_rmv("a"), TypeError, "keys must be a list"),
    ("contains", lambda: calls.kv_contains(bytearray(b"a")), TypeError, "keys must be a list"),
    ("sh-get-both", lambda: calls.sh_get(1, ["a"], "b"), ValueError, "keys and key"),
    ("sh-rmv-empty", lambda: calls.sh_rmv(1, ()), ValueError, "keys must not be empty"),
    ("sh-contains", lambda: calls.sh_contains(1, [None]), TypeError, "keys[0] must be a str"),
    # dataset names
    ("save-empty", lambda: calls.kv_save(""), ValueError, "name must not be empty"),
    ("save-slash", lambda: calls.kv_save("a/b"), ValueError, "name must not contain '/'"),
    ("save-bslash", lambda: calls.kv_save("a\\b"), ValueError, "name must not contain '\\\\'"),
    ("save-dotdot", lambda: calls.kv_save(".."), ValueError, "name must not contain '..'"),
    ("save-dots", lambda: calls.kv_save("a...b"), ValueError, "name must not contain '..'"),
    ("save-nul", lambda: calls.kv_save("a\x00"), ValueError, "name must not contain '\\x00'"),
    ("save-type", lambda: calls.kv_save(5), TypeError, "name must be a str, got int"),
    ("save-lone", lambda: calls.kv_save(LONE), ValueError, "name contains a string"),
    ("load", lambda: calls.kv_load("x/"), ValueError, "name must not contain '/'"),
    ("sh-save", lambda: calls.sh_save(".."), ValueError, "name must not contain"),
    ("sh-load", lambda: calls.sh_load(""), ValueError, "name must not be empty"),
    # KV_FIND / KV_UPDATE / KV_ARR_APPEND
    ("find-path-type", lambda: calls.kv_find(5), TypeError, "path must be a str"),
    ("find-path-empty", lambda: calls.kv_find(""), ValueError, "path must not be empty"),
    ("find-rsp-type", lambda: calls.kv_find("$", 1), TypeError, "rsp must be a str"),
    ("find-rsp", lambda: calls.kv_find("$", "values"), ValueError, "rsp must be 'keys', 'paths'"),
    ("find-keys", lambda: calls.kv_find("$", "keys", "a"), TypeError, "keys must be a list"),
    ("find-lone", lambda: calls.kv_find(LONE), ValueError, "path contains a string"),
    ("update-key", lambda: calls.kv_update(1, "$", 1), TypeError, "key must be a str"),
    ("update-path", lambda: calls.kv_update("k", None, 1), TypeError, "path must be a str"),
    ("update-empty", lambda: calls.kv_update("k", "", 1), ValueError, "path must not be empty"),
    ("update-nan", lambda: calls.kv_update("k", "$", NAN), ValueError, "value: nan"),
    ("update-set", lambda: calls.kv_update("k", "$", {1}), TypeError, "value: set"),
    (
        "update-deep",
        lambda: calls.kv_update("k", "$", nested(MAX_VALUE_DEPTH + 1)),
        ValueError,
        "value: nested deeper",
    ),
    ("append-str", lambda: calls.kv_arr_append("k", "ab"), TypeError, "items must be a list"),
    ("append-dict", lambda: calls.kv_arr_append("k", {}), TypeError, "items must be a list"),
    ("append-int", lambda: calls.kv_arr_append("k", 3), TypeError, "items must be a list"),
    ("append-nan", lambda: calls.kv_arr_append("k", [1, NAN]), ValueError, "items[1]: nan"),
    ("append-key", lambda: calls.kv_arr_append(None, []), TypeError, "key must be a str"),
    ("append-name", lambda: calls.kv_arr_append("k", [], 5), TypeError, "name must be a str"),
    # sessions: durations, flags, tokens
    ("dur-bool", lambda: calls.sh_create(True), TypeError, "durationSeconds must be an int"),
    ("dur-float", lambda: calls.sh_create(1.5), TypeError, "durationSeconds must be an int"),
    ("dur-neg", lambda: calls.sh_create(-1), ValueError, "durationSeconds must be in 0.."),
    (
        "dur-max",
        lambda: calls.sh_create(DURATION_MAX + 1),
        ValueError,
        f"durationSeconds must be in 0..{DURATION_MAX}",
    ),
    ("flag-del", lambda: calls.sh_create(5, 1), TypeError, "deleteSessionOnExpire must be a bool"),
    ("flag-set", lambda: calls.sh_create(5, False, "y"), TypeError, "extendOnSetAdd must be"),
    ("flag-get", lambda: calls.sh_create(5, False, False, 0), TypeError, "extendOnGet must be"),
    ("flags-0", lambda: calls.sh_create(0, True), ValueError, "durationSeconds is 0"),
    ("flags-0-get", lambda: calls.sh_create(extendOnGet=True), ValueError, "extendOnGet would"),
    ("tkn-bool", lambda: calls.sh_end(True), TypeError, "tkn must be an int session token, got"),
    ("tkn-str", lambda: calls.sh_end("1"), TypeError, "tkn must be an int session token"),
    ("tkn-float", lambda: calls.sh_info(1.0), TypeError, "tkn must be an int"),
    ("tkn-neg", lambda: calls.sh_count(-1), ValueError, "tkn must be in 0..2**64-1, got -1"),
    ("tkn-big", lambda: calls.sh_keys(TOKEN_MAX + 1), ValueError, "tkn must be in 0..2**64-1"),
    ("tkn-session", lambda: calls.sh_clear(Session(-5)), ValueError, "tkn must be in"),
    ("tkn-session-bool", lambda: calls.sh_clear(Session(True)), TypeError, "tkn must be an int"),
    ("tkn-get", lambda: calls.sh_get(None, ["a"]), TypeError, "tkn must be an int"),
    ("tkn-set", lambda: calls.sh_set(-1, {}), ValueError, "tkn must be in"),
    ("tkn-rmv", lambda: calls.sh_rmv("x", ["a"]), TypeError, "tkn must be an int"),
    ("tkn-contains", lambda: calls.sh_contains(2**64, []), ValueError, "tkn must be in"),
    ("tkn-add", lambda: calls.sh_add(False, {}), TypeError, "tkn must be an int"),
    ("tkn-clear-set", lambda: calls.sh_clear_set(1.0, {}), TypeError, "tkn must be an int"),
    ("tkns-str", lambda: calls.sh_session_exists("12"), TypeError, "tkns must be a list"),
    ("tkns-int", lambda: calls.sh_session_exists(12), TypeError, "tkns must be a list"),
    ("tkns-item", lambda: calls.sh_session_exists([1, True]), TypeError, "tkns[1] must be an int"),
    ("tkns-range", lambda: calls.sh_session_exists([2**64]), ValueError, "tkns[0] must be in"),
    ("save-tkns", lambda: calls.sh_save("x", [-1]), ValueError, "tkns[0] must be in"),
    ("save-tkns-map", lambda: calls.sh_save("x", {1: 2}), TypeError, "tkns must be a list"),
]


@pytest.mark.parametrize(
    ("build", "error", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_arguments_are_refused_before_sending(
    build: Callable[[], Any], error: type[Exception], message: str
) -> None:
    client, server = open_client()
    with pytest.raises(error) as info:
        client.submit(build())
    assert type(info.value) is error
    assert message in str(info.value)
    assert client.pending == 0 and client.data_to_send() == b""
    assert pump(client, server).texts == []


class Color(enum.IntEnum):
    RED = 1


class Tag(str, enum.Enum):
    A = "a"


GOOD: list[tuple[str, Callable[[], Any], dict[str, Any]]] = [
    ("tkn-0", lambda: calls.sh_end(0), {"SH_END": {"tkn": 0}}),
    ("tkn-max", lambda: calls.sh_end(TOKEN_MAX), {"SH_END": {"tkn": TOKEN_MAX}}),
    ("session", lambda: calls.sh_count(Session(2**63 + 1)), {"SH_COUNT": {"tkn": 2**63 + 1}}),
    ("dur-0", lambda: calls.sh_create(0), {"SH_NEW": {}}),
    (
        "dur-max",
        lambda: calls.sh_create(DURATION_MAX, True, True, True),
        {
            "SH_NEW": {
                "expiry": {
                    "duration": DURATION_MAX,
                    "deleteSession": True,
                    "extendOnSetAdd": True,
                    "extendOnGet": True,
                }
            }
        },
    ),
    (
        "int-edges",
        lambda: calls.kv_set({"lo": INT_MIN, "hi": INT_MAX, "f": -0.0, "t": (1, [2])}),
        {"KV_SET": {"keys": {"lo": INT_MIN, "hi": INT_MAX, "f": -0.0, "t": [1, [2]]}}},
    ),
    (
        "enums",
        lambda: calls.kv_set({"c": Color.RED, "t": Tag.A}),
        {"KV_SET": {"keys": {"c": 1, "t": "a"}}},
    ),
    (
        "float-in-a-tuple",
        lambda: calls.kv_set({"t": (1.5, [2.5, None])}),
        {"KV_SET": {"keys": {"t": [1.5, [2.5, None]]}}},
    ),
    ("dotted-name", lambda: calls.kv_save("a.b.c"), {"KV_SAVE": {"name": "a.b.c"}}),
    ("tuple-keys", lambda: calls.kv_get(("a", "b")), {"KV_GET": {"keys": ["a", "b"]}}),
    (
        "generator",
        lambda: calls.kv_contains(k for k in "ab"),
        {"KV_CONTAINS": {"keys": ["a", "b"]}},
    ),
    ("empty-get", lambda: calls.kv_get(), {"KV_GET": {"keys": []}}),
    ("tkns-empty", lambda: calls.sh_save("n", []), {"SH_SAVE": {"name": "n"}}),
    (
        "tkns-sessions",
        lambda: calls.sh_session_exists([Session(1), 2]),
        {"SH_EXISTS": {"tkns": [1, 2]}},
    ),
    (
        "append-tuple",
        lambda: calls.kv_arr_append("k", ()),
        {"KV_ARR_APPEND": {"items": [], "key": "k"}},
    ),
]


@pytest.mark.parametrize(
    ("build", "sent"), [case[1:] for case in GOOD], ids=[case[0] for case in GOOD]
)
def test_edge_arguments_are_accepted(build: Callable[[], Any], sent: dict[str, Any]) -> None:
    client, server = open_client()
    client.submit(build())
    (text,) = pump(client, server).texts
    assert json.loads(text) == sent
    assert json.dumps(json.loads(text)) == json.dumps(sent)  # same types, same order


def test_nesting_limit_is_exact() -> None:
    ok = nested(MAX_VALUE_DEPTH)
    check_json(ok, "value")
    client, server = open_client(max_message_size=8192)
    request = calls.kv_update("k", "$", ok)
    client.submit(request)
    (text,) = pump(client, server).texts
    assert json.loads(text)["KV_UPDATE"]["value"] == ok
    with pytest.raises(ValueError, match="value: nested deeper than 512 levels"):
        check_json(nested(MAX_VALUE_DEPTH + 1), "value")


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (2**64, ValueError, "v: integer 18446744073709551616 is outside"),
        (INT_MIN - 1, ValueError, "v: integer"),
        (NAN, ValueError, "v: nan is not a JSON number"),
        (object(), TypeError, "v: object is not JSON-encodable"),
        (b"x", TypeError, "v: bytes"),
    ],
)
def test_check_value_at_the_top_level(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        check_value(value, "v")


@pytest.mark.parametrize("value", [None, True, "s", Tag.A, 0, INT_MAX, INT_MIN, Color.RED, 1.5])
def test_check_value_accepts_scalars(value: Any) -> None:
    check_value(value, "v")
    assert check_json(value, "v") is value


def test_command_request_names_the_parameter_with_a_lone_surrogate() -> None:
    command = COMMANDS["KV_UPDATE"]
    with pytest.raises(ValueError, match=r"^value: contains a string that is not valid") as info:
        command.request({"key": "k", "path": "$", "value": ["ok", {"x": LONE}]}, dict)
    assert isinstance(info.value.__cause__, UnicodeEncodeError)
    assert repr(Command("X").request({"a": "b" * 100}, dict)).startswith(
        'Request(X, b\'{"X":{"a":"bbbb'
    )


@budget(40)
@given(size=st.integers(64, 8192), prefix=st.text(max_size=20))
def test_request_size_limit_is_exact(size: int, prefix: str) -> None:
    """A request of exactly max_message_size bytes is sent; one byte more is refused."""
    client, server = open_client(max_message_size=size)
    head = len(calls.kv_set({"k": prefix}).payload)
    if head > size:
        with pytest.raises(RequestTooLargeError):
            client.submit(calls.kv_set({"k": prefix}))
        return
    exact = calls.kv_set({"k": prefix + "x" * (size - head)})
    over = calls.kv_set({"k": prefix + "x" * (size - head + 1)})
    assert len(exact.payload) == size and len(over.payload) == size + 1
    with pytest.raises(RequestTooLargeError, match=f"{size + 1} bytes, more than"):
        client.submit(over)
    assert client.pending == 0 and client.data_to_send() == b""
    client.submit(exact)
    assert pump(client, server).texts == [exact.payload.decode()]


def test_deep_value_is_still_checked_when_the_stack_is_nearly_full() -> None:
    """The fast recursive check gives way to the iterative walk instead of failing."""
    import inspect
    import sys

    from ndb_proto.codec import check_value

    value: object = 1
    for _ in range(300):
        value = [value]
    bad: object = float("nan")
    for _ in range(300):
        bad = [bad]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 100)
    try:
        check_value(value, "value")
        with pytest.raises(ValueError, match="NaN"):
            check_value(bad, "value")
    finally:
        sys.setrecursionlimit(limit)
