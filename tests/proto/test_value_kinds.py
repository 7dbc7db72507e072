"""Subclasses of str, int and float, and mappings that are not dicts, are accepted wherever the
exact type is, at any depth, and sent exactly as the base type would be."""

from __future__ import annotations

import math
import types
from collections import ChainMap, OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndb_proto import calls
from ndb_proto.codec import INT_MIN, encode
from ndb_proto.commands import Request
from ndb_server.strategies import storable_values
from tests.proto.helpers import budget


class Text(str):
    def __str__(self) -> str:  # what the base type says is sent, not this
        return "not me"


class Count(int):
    def __int__(self) -> int:
        return -1


class Real(float):
    def __float__(self) -> float:
        return -1.0


class Members(dict[str, Any]):
    pass


MAPPINGS: list[Callable[[dict[str, Any]], Any]] = [
    dict,
    Members,
    OrderedDict,
    ChainMap,
    types.MappingProxyType,
]

# The test kit's own strategy of values the store keeps (shallow: `disguise` recurses).
plain_values = storable_values(max_depth=8)


def disguise(value: Any, data: st.DataObject) -> Any:
    """The same JSON value with some parts replaced by a subclass or another mapping type."""
    draw = data.draw
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return draw(st.sampled_from([str, Text]))(value)
    if isinstance(value, int):
        return draw(st.sampled_from([int, Count]))(value)
    if isinstance(value, float):
        return draw(st.sampled_from([float, Real]))(value)
    if isinstance(value, list):
        items = [disguise(item, data) for item in value]
        return draw(st.sampled_from([list, tuple]))(items)
    members = {disguise(name, data): disguise(item, data) for name, item in value.items()}
    return draw(st.sampled_from(MAPPINGS))(members)


@given(st.dictionaries(st.text(max_size=3), plain_values, max_size=4), st.data())
@budget(60)
def test_disguised_values_are_sent_as_their_plain_equivalent(
    keys: dict[str, Any], data: st.DataObject
) -> None:
    disguised = disguise(keys, data)
    assert calls.kv_set(disguised).payload == calls.kv_set(keys).payload
    assert calls.sh_set(1, disguised).payload == calls.sh_set(1, keys).payload
    value = disguise(list(keys.values()), data)
    values = list(keys.values())
    assert calls.kv_update("k", "$", value).payload == calls.kv_update("k", "$", values).payload
    assert calls.kv_arr_append("k", value).payload == calls.kv_arr_append("k", values).payload


SUBCLASS_CALLS: list[tuple[str, Callable[[], Request[Any]], Callable[[], Request[Any]]]] = [
    ("kv_get-keys", lambda: calls.kv_get([Text("a")]), lambda: calls.kv_get(["a"])),
    ("kv_get-key", lambda: calls.kv_get(key=Text("a")), lambda: calls.kv_get(key="a")),
    ("sh_get", lambda: calls.sh_get(Count(7), [Text("a")]), lambda: calls.sh_get(7, ["a"])),
    ("kv_rmv", lambda: calls.kv_rmv([Text("a")]), lambda: calls.kv_rmv(["a"])),
    ("kv_contains", lambda: calls.kv_contains([Text("a")]), lambda: calls.kv_contains(["a"])),
    (
        "kv_find",
        lambda: calls.kv_find(Text("$.x"), Text("kv"), [Text("a")]),  # type: ignore[arg-type]
        lambda: calls.kv_find("$.x", "kv", ["a"]),
    ),
    (
        "kv_update",
        lambda: calls.kv_update(Text("k"), Text("$.x"), Real(1.5)),
        lambda: calls.kv_update("k", "$.x", 1.5),
    ),
    (
        "kv_arr_append",
        lambda: calls.kv_arr_append(Text("k"), [Count(2)], Text("n")),
        lambda: calls.kv_arr_append("k", [2], "n"),
    ),
    ("kv_save", lambda: calls.kv_save(Text("ds")), lambda: calls.kv_save("ds")),
    ("sh_create", lambda: calls.sh_create(Count(5)), lambda: calls.sh_create(5)),
    (
        "kv_set-chainmap",
        lambda: calls.kv_set(ChainMap({Text("a"): Text("x")}, {"b": Count(2)})),
        lambda: calls.kv_set({"b": 2, "a": "x"}),
    ),
    (
        "kv_set-mappingproxy",
        lambda: calls.kv_set(types.MappingProxyType({"a": {"b": Real(0.5)}})),
        lambda: calls.kv_set({"a": {"b": 0.5}}),
    ),
]


@pytest.mark.parametrize(
    ("build", "plain"),
    [case[1:] for case in SUBCLASS_CALLS],
    ids=[case[0] for case in SUBCLASS_CALLS],
)
def test_subclass_arguments_are_sent_as_the_base_type(
    build: Callable[[], Request[Any]], plain: Callable[[], Request[Any]]
) -> None:
    assert build().payload == plain().payload


def test_replies_to_requests_with_subclass_names_are_read() -> None:
    assert calls.kv_get([Text("a")]).result({"keys": {"a": 1}, "st": 1}) == {"a": 1}
    assert calls.kv_get(key=Text("a")).result({"keys": {"a": 1}, "st": 1}) == 1
    contains = calls.kv_contains([Text("a"), Text("b")])
    assert contains.result({"contains": ["b"], "st": 1}) == ["b"]


@pytest.mark.parametrize(
    ("value", "error", "where"),
    [
        (ChainMap({"a": Count(2**64)}), ValueError, r"^keys\['k'\]\['a'\]: integer"),
        ([types.MappingProxyType({1: 2})], TypeError, r"^keys\['k'\]\[0\]: object keys must"),
        (Real(math.nan), ValueError, r"^keys\['k'\]: nan is not"),
        (Real(math.inf), ValueError, r"^keys\['k'\]: inf is not"),
        (Count(INT_MIN - 1), ValueError, r"^keys\['k'\]: integer"),
    ],
)
def test_disguised_values_are_checked_like_plain_ones(
    value: Any, error: type[Exception], where: str
) -> None:
    with pytest.raises(error, match=where):
        calls.kv_set({"k": value})
    with pytest.raises(error, match=where):
        calls.kv_set(types.MappingProxyType({"k": value}))


def test_encode_refuses_what_no_check_accepts() -> None:
    with pytest.raises(TypeError):
        encode({"a": object()})
