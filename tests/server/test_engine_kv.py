"""KV_FIND, KV_UPDATE, KV_ARR_APPEND and store-order details beyond the recorded vectors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ndb_server import Engine


def _call(engine: Engine, request: object) -> Any:
    return json.loads(engine.handle_text(json.dumps(request, separators=(",", ":"))))


@pytest.fixture
def cars() -> Engine:
    engine = Engine(clock=lambda: 0.0)
    keys = {
        "car1": {"make": "Ford", "doors": 5},
        "car2": {"make": "VW", "doors": 3},
        "note": "hello",
        "fleet": [{"make": "Kia", "doors": 5}, {"make": "VW", "doors": 2}],
        "5": {"make": "Five"},
        '{"a":1,"b":2}': {"make": "Obj"},
    }
    assert _call(engine, {"KV_SET": {"keys": keys}}) == {"KV_SET_RSP": {"st": 1}}
    return engine


def _find(engine: Engine, **params: object) -> Any:
    return _call(engine, {"KV_FIND": params})["KV_FIND_RSP"]


def test_find_dedupes_paths_within_a_value(cars: Engine) -> None:
    found = _find(cars, keys=["car1"], path="$['make','make','doors']", rsp="paths")
    assert found == {"paths": ["$['make']", "$['doors']"], "st": 1}


def test_find_paths_are_relative_to_each_value(cars: Engine) -> None:
    found = _find(cars, keys=["car1", "note", "car2", "car1"], path="$", rsp="paths")
    assert found == {"paths": ["$", "$", "$", "$"], "st": 1}


def test_find_listed_keys_keep_request_order_and_duplicates(cars: Engine) -> None:
    found = _find(cars, keys=["car2", "nope", "car1", "car2"], path="$.make", rsp="keys")
    assert found == {"keys": ["car2", "car1", "car2"], "st": 1}
    found = _find(cars, keys=["car2", "car2"], path="$.make", rsp="kv")
    assert found == {"keys": {"car2": {"doors": 3, "make": "VW"}}, "st": 1}


def test_find_looks_non_string_keys_up_by_their_json_text(cars: Engine) -> None:
    found = _find(cars, keys=[5, {"b": 2, "a": 1}, None], path="$.make", rsp="keys")
    assert found == {"keys": ["5", '{"a":1,"b":2}'], "st": 1}


def test_find_without_keys_or_with_empty_keys_searches_everything(cars: Engine) -> None:
    everything = sorted(["car1", "car2", "5", '{"a":1,"b":2}'])
    assert sorted(_find(cars, path="$.make", rsp="keys")["keys"]) == everything
    assert sorted(_find(cars, keys=[], path="$.make", rsp="keys")["keys"]) == everything


def test_find_filter_and_descendant_paths(cars: Engine) -> None:
    assert _find(cars, path="$[?(@.doors < 3)]", rsp="paths") == {"paths": ["$[1]"], "st": 1}
    found = _find(cars, keys=["fleet"], path="$..make", rsp="paths")
    assert found == {"paths": ["$[0]['make']", "$[1]['make']"], "st": 1}


def test_find_bad_path_is_only_an_error_once_a_value_is_evaluated(cars: Engine) -> None:
    assert _find(cars, path="$[?(", rsp="keys") == {"st": 4}
    assert _find(cars, keys=["nope"], path="$[?(", rsp="keys") == {"keys": [], "st": 1}
    empty = Engine(clock=lambda: 0.0)
    assert _find(empty, path="$[?(", rsp="kv") == {"keys": {}, "st": 1}
    assert _find(empty, path="not a path", rsp="paths") == {"paths": [], "st": 1}


def test_update_replaces_every_match_and_counts_them() -> None:
    engine = Engine(clock=lambda: 0.0)
    _call(engine, {"KV_SET": {"keys": {"p": {"a": {"b": {"c": 1}}, "l": [1, 2]}}}})
    reply = _call(engine, {"KV_UPDATE": {"key": "p", "path": "$..*", "value": {"n": 0}}})
    assert reply == {"KV_UPDATE_RSP": {"cnt": 6, "st": 1}}
    got = _call(engine, {"KV_GET": {"keys": ["p"]}})
    assert got == {"KV_GET_RSP": {"keys": {"p": {"a": {"n": 0}, "l": {"n": 0}}}, "st": 1}}


def test_update_copies_the_value_into_each_node() -> None:
    engine = Engine(clock=lambda: 0.0)
    _call(engine, {"KV_SET": {"keys": {"p": {"x": 1, "y": 2}}}})
    _call(engine, {"KV_UPDATE": {"key": "p", "path": "$.*", "value": {"v": [1]}}})
    _call(engine, {"KV_UPDATE": {"key": "p", "path": "$.x.v[0]", "value": 9}})
    got = _call(engine, {"KV_GET": {"keys": ["p"]}})
    assert got == {"KV_GET_RSP": {"keys": {"p": {"x": {"v": [9]}, "y": {"v": [1]}}}, "st": 1}}


def test_update_root_and_no_member_creation() -> None:
    engine = Engine(clock=lambda: 0.0)
    _call(engine, {"KV_SET": {"keys": {"p": {"a": 1}, "s": "str"}}})
    assert _call(engine, {"KV_UPDATE": {"key": "p", "path": "$.b", "value": 2}}) == {
        "KV_UPDATE_RSP": {"cnt": 0, "st": 1}
    }
    assert _call(engine, {"KV_UPDATE": {"key": "s", "path": "$", "value": [1]}}) == {
        "KV_UPDATE_RSP": {"cnt": 1, "st": 1}
    }
    got = _call(engine, {"KV_GET": {"keys": ["p", "s"]}})
    assert got == {"KV_GET_RSP": {"keys": {"p": {"a": 1}, "s": [1]}, "st": 1}}


@pytest.mark.parametrize("path", ["", "$[?(", "x", "$.."])
def test_update_with_an_invalid_path_is_err_1000_only_for_existing_keys(path: str) -> None:
    engine = Engine(clock=lambda: 0.0)
    _call(engine, {"KV_SET": {"keys": {"p": 1}}})
    bad = {"KV_UPDATE": {"key": "p", "path": path, "value": 1}}
    assert _call(engine, bad) == {"ERR": {"m": "", "st": 1000}}
    missing = {"KV_UPDATE": {"key": "q", "path": path, "value": 1}}
    assert _call(engine, missing) == {"KV_UPDATE_RSP": {"cnt": 0, "st": 22}}


@pytest.mark.parametrize(
    ("value", "params", "status", "after"),
    [
        ([1], {"items": [2, [3]]}, 1, [1, 2, [3]]),
        ([1], {"items": []}, 1, [1]),
        ({"l": [0]}, {"name": "l", "items": [1]}, 1, {"l": [0, 1]}),
        ({"l": "x"}, {"name": "l", "items": [1]}, 1, {"l": "x"}),
        ({"l": [0]}, {"name": "m", "items": [1]}, 1000, {"l": [0]}),
        ([1], {"name": "l", "items": [1]}, 1000, [1]),
        ("s", {"items": [1]}, 1000, "s"),
        ({"l": [0]}, {"items": [1]}, 1000, {"l": [0]}),
    ],
)
def test_arr_append(value: object, params: dict[str, object], status: int, after: object) -> None:
    engine = Engine(clock=lambda: 0.0)
    _call(engine, {"KV_SET": {"keys": {"k": value}}})
    reply = _call(engine, {"KV_ARR_APPEND": {"key": "k", **params}})
    assert reply == {"KV_ARR_APPEND_RSP": {"st": status}}
    assert _call(engine, {"KV_GET": {"keys": ["k"]}}) == {
        "KV_GET_RSP": {"keys": {"k": after}, "st": 1}
    }


def test_set_add_rmv_contains_and_clear_set_counts() -> None:
    engine = Engine(clock=lambda: 0.0)
    _call(engine, {"KV_SET": {"keys": {"b": 1, "a": 2}}})
    _call(engine, {"KV_ADD": {"keys": {"a": 9, "c": 3}}})
    assert _call(engine, {"KV_KEYS": {}}) == {"KV_KEYS_RSP": {"keys": ["a", "b", "c"], "st": 1}}
    got = _call(engine, {"KV_GET": {"keys": ["a", "c", "a"]}})
    assert got == {"KV_GET_RSP": {"keys": {"a": 2, "c": 3}, "st": 1}}
    _call(engine, {"KV_RMV": {"keys": ["a", 1, "zz"]}})
    found = _call(engine, {"KV_CONTAINS": {"keys": ["c", "a", "c", None]}})
    assert found == {"KV_CONTAINS_RSP": {"contains": ["c", "c"], "st": 1}}
    assert _call(engine, {"KV_CLEAR_SET": {"keys": {"x": 1}}}) == {
        "KV_CLEAR_SET_RSP": {"cnt": 2, "st": 1}
    }
    assert _call(engine, {"KV_COUNT": {}}) == {"KV_COUNT_RSP": {"cnt": 1, "st": 1}}


def test_values_deeper_than_1024_still_work_through_updates() -> None:
    engine = Engine(clock=lambda: 0.0)
    deep = "[" * 1000 + "]" * 1000
    engine.handle_text('{"KV_SET":{"keys":{"k":' + deep + "}}}")
    update = '{"KV_UPDATE":{"key":"k","path":"$' + "[0]" * 990 + '","value":' + deep + "}}"
    assert engine.handle_text(update) == '{"KV_UPDATE_RSP":{"cnt":1,"st":1}}'
    assert engine.handle_text('{"KV_GET":{"keys":["k"]}}') == (
        '{"KV_GET_RSP":{"keys":{"k":' + "[" * 1990 + "]" * 1990 + '},"st":1}}'
    )


def test_a_value_too_deep_to_serialise_is_err_1000_not_a_crash() -> None:
    engine = Engine(clock=lambda: 0.0)
    engine.handle_text('{"KV_SET":{"keys":{"k":1}}}')
    value: list[object] = []
    for _ in range(50_000):  # only reachable through many KV_UPDATEs; built directly here
        value = [value]
    engine._state.store["k"] = value
    assert engine.handle_text('{"KV_GET":{"keys":["k"]}}') == '{"ERR":{"m":"","st":1000}}'
    assert engine.handle_text('{"KV_COUNT":{}}') == '{"KV_COUNT_RSP":{"cnt":1,"st":1}}'
