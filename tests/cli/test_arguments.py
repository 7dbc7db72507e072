"""How words become arguments, read from the command surface (no command written by hand)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pytest

from ndb_cli import surface
from ndb_cli.arguments import bind
from ndb_cli.runner import prepare
from ndb_cli.surface import Kind, commands
from ndb_cli.words import IncompleteInput, Text, UsageError, Value, is_complete, split_words
from ndb_proto import calls
from ndb_proto.commands import KV_COUNT, Request, ignore
from ndb_proto.session import Session


def words(*raw: str) -> list[Text]:
    return [Text(r) for r in raw]


def test_every_surface_function_is_a_command_in_order() -> None:
    assert list(commands()) == [f.__name__ for f in calls.SURFACE]


def test_a_new_surface_function_becomes_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def kv_frobnicate(
        tkn: calls.Token,
        keys: Iterable[str],
        data: Mapping[str, Any],
        mode: Literal["a", "b"] = "a",
        depth: int = 1,
        strict: bool = False,
    ) -> Request[None]:
        """Frobnicate keys. More text."""
        return KV_COUNT.request({}, ignore)

    monkeypatch.setattr(calls, "SURFACE", (*calls.SURFACE, kv_frobnicate))
    surface.commands.cache_clear()
    try:
        spec = commands()["kv_frobnicate"]
        kinds = {p.name: (p.kind, p.many, p.required) for p in spec.params}
        assert kinds == {
            "tkn": (Kind.TOKEN, False, True),
            "keys": (Kind.WORD, True, True),
            "data": (Kind.OBJECT, False, True),
            "mode": (Kind.CHOICE, False, False),
            "depth": (Kind.INTEGER, False, False),
            "strict": (Kind.BOOLEAN, False, False),
        }
        assert spec.summary == "Frobnicate keys."
        assert spec.returns_nothing
        assert spec.usage() == (
            "kv_frobnicate tkn:token keys... data:object [--mode {a,b}] [--depth integer]"
            " [--strict]"
        )
        bound = bind(spec, words("7", "a", "b", '{"x": 1}', "--strict", "--mode=b"))
        assert bound == {
            "tkn": 7,
            "keys": ["a", "b"],
            "data": {"x": 1},
            "strict": True,
            "mode": "b",
        }
    finally:
        surface.commands.cache_clear()


@pytest.fixture
def table() -> dict[str, surface.CommandSpec]:
    return commands()


def test_key_names_stay_strings(table: dict[str, surface.CommandSpec]) -> None:
    assert bind(table["kv_get"], words("1", "true", "null")) == {"keys": ["1", "true", "null"]}
    assert bind(table["kv_get"], words("--key", "1")) == {"key": "1"}
    assert bind(table["kv_get"], words('"a b"', "'c d'")) == {"keys": ["a b", "c d"]}
    verbatim = [Text('"a b"', verbatim=True)]
    assert bind(table["kv_get"], verbatim) == {"keys": ['"a b"']}


def test_a_list_parameter_leaves_words_for_later_required_ones(
    table: dict[str, surface.CommandSpec],
) -> None:
    assert bind(table["sh_get"], words("5", "a", "b")) == {"tkn": 5, "keys": ["a", "b"]}
    assert bind(table["kv_arr_append"], words("k", "1", '"x"', "{}")) == {
        "key": "k",
        "items": [1, "x", {}],
    }
    assert bind(table["kv_rmv"], words("--keys", "a", "--keys", "b")) == {"keys": ["a", "b"]}


def test_variables_give_values_and_lists(table: dict[str, surface.CommandSpec]) -> None:
    assert bind(table["sh_count"], [Value(Session(9))]) == {"tkn": 9}
    assert bind(table["kv_get"], [Value(["a", "b"])]) == {"keys": ["a", "b"]}
    assert bind(table["kv_set"], [Value({"a": 1})]) == {"keys": {"a": 1}}


@pytest.mark.parametrize(
    ("command", "raw", "named"),
    [
        ("kv_update", ("k", "$.a", "billy"), "value"),
        ("sh_count", ("x",), "tkn"),
        ("sh_create", ("--extendOnGet=maybe",), "extendOnGet"),
        ("kv_update", ("k",), "path"),
        ("kv_count", ("extra",), "extra"),
        ("kv_get", ("--bogus", "1"), "--bogus"),
        ("kv_get", ("--key",), "--key"),
        ("kv_get", ("--key", "a", "--key", "b"), "key"),
        ("kv_rmv", (), "keys"),
    ],
)
def test_usage_errors_name_the_parameter(
    table: dict[str, surface.CommandSpec], command: str, raw: tuple[str, ...], named: str
) -> None:
    with pytest.raises(UsageError) as caught:
        bind(table[command], words(*raw))
    assert named in str(caught.value)


def test_prepare_runs_the_surface_checks_before_sending() -> None:
    with pytest.raises(ValueError, match="rsp"):
        prepare("kv_find", words("$.a", "--rsp", "nope"))
    assert prepare("kv_find", words("$.a", "--rsp", "kv")).kwargs == {"path": "$.a", "rsp": "kv"}


def test_double_dash_ends_options(table: dict[str, surface.CommandSpec]) -> None:
    assert bind(table["kv_get"], words("--", "--key")) == {"keys": ["--key"]}


def test_words_split_outside_json_only() -> None:
    assert split_words('kv_set {"a b": [1, "}"]} x') == ["kv_set", '{"a b": [1, "}"]}', "x"]
    assert split_words("kv_get 'it''s' \"q\\\"\"") == ["kv_get", "'it''s'", '"q\\""']
    assert split_words("  ") == []
    with pytest.raises(IncompleteInput):
        split_words('kv_set {"a":')
    with pytest.raises(IncompleteInput):
        split_words('kv_get "open')
    with pytest.raises(UsageError):
        split_words("kv_set }")
    assert not is_complete('kv_set {"a":\n')
    assert is_complete('kv_set {"a":\n 1}')
    assert is_complete("kv_set ]")


def test_quotes_open_only_at_the_start_of_a_word() -> None:
    assert split_words("kv_get it's a\"b") == ["kv_get", "it's", 'a"b']
    assert split_words("kv_get 'a b' \"c d\"") == ["kv_get", "'a b'", '"c d"']
    assert split_words('kv_set {"a b":"it\'s"}') == ["kv_set", '{"a b":"it\'s"}']
    with pytest.raises(IncompleteInput):
        split_words("kv_get 'it")
