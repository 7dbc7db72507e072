"""The wire vectors recorded from a real NemesisDB 0.7.4 server, and how to compare against them.

A copy lives in ``tests/data`` so a checkout is self-contained; ``test_vectors_copy.py`` checks
it against ``../shared/vectors`` when that exists. See ``tests/data/VECTORS.md`` for the format.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "nemesisdb-0.7.4.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "nemesisdb-0.7.4.json"


def vectors_path() -> Path:
    override = os.environ.get("NDB_VECTORS_DIR")
    return Path(override) / "nemesisdb-0.7.4.json" if override else DATA


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    unordered_arrays: bool
    steps: list[dict[str, Any]]


def load() -> dict[str, Any]:
    with open(vectors_path(), encoding="utf-8") as file:
        return json.load(file)  # type: ignore[no-any-return]


def scenarios() -> list[Scenario]:
    return [
        Scenario(s["name"], s["server"], bool(s.get("unordered_arrays")), s["steps"])
        for s in load()["scenarios"]
    ]


def server_settings(name: str) -> dict[str, Any]:
    return load()["servers"][name]  # type: ignore[no-any-return]


class Bindings(dict[int, int]):
    """``$tkn:N`` placeholders and the tokens they were bound to."""


def substitute(value: Any, bindings: Bindings) -> Any:
    """Replace ``"$tkn:N"`` in a request by its bound token."""
    if isinstance(value, str) and value.startswith("$tkn:"):
        return bindings[int(value[5:])]
    if isinstance(value, dict):
        return {k: substitute(v, bindings) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, bindings) for v in value]
    return value


def bind_new_tokens(expected: Any, actual: Any, bindings: Bindings) -> None:
    """An ``SH_NEW_RSP`` with st 1 binds its ``$tkn:N`` to the token actually received."""
    if (
        isinstance(expected, dict)
        and "SH_NEW_RSP" in expected
        and isinstance(actual, dict)
        and "SH_NEW_RSP" in actual
    ):
        placeholder = expected["SH_NEW_RSP"].get("tkn")
        if isinstance(placeholder, str) and placeholder.startswith("$tkn:"):
            number = int(placeholder[5:])
            if number not in bindings:
                bindings[number] = actual["SH_NEW_RSP"]["tkn"]


def matches(expected: Any, actual: Any, bindings: Bindings, unordered: bool) -> bool:
    """Exact JSON equality, except ``"$int"`` matches any int, ``"$tkn:N"`` the bound token,
    and (``unordered``) arrays compare as multisets."""
    if isinstance(expected, str) and expected == "$int":
        return type(actual) is int
    if isinstance(expected, str) and expected.startswith("$tkn:"):
        return actual == bindings.get(int(expected[5:]), object())
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(v, actual[k], bindings, unordered) for k, v in expected.items())
        )
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        if not unordered:
            return all(
                matches(e, a, bindings, unordered) for e, a in zip(expected, actual, strict=True)
            )
        remaining = list(actual)
        for item in expected:
            for index, candidate in enumerate(remaining):
                if matches(item, candidate, bindings, unordered):
                    del remaining[index]
                    break
            else:
                return False
        return True
    return type(expected) is type(actual) and expected == actual


def oversize_text(size: int) -> str:
    """The ``send_oversize`` request: a KV_SET text of exactly ``size`` bytes."""
    head, tail = '{"KV_SET":{"keys":{"k":"', '"}}}'
    return head + "x" * (size - len(head) - len(tail)) + tail


__all__ = [
    "Bindings",
    "Scenario",
    "bind_new_tokens",
    "matches",
    "oversize_text",
    "scenarios",
    "server_settings",
    "substitute",
]
