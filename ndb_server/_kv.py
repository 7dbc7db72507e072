"""Operations on one key -> value map: the KV store, or one session's data.

These are the server's ``KvExecutor`` functions. They assume the parameters were already
validated and never build replies; ``_commands`` turns their results into wire replies. A map
is a plain ``dict`` whose iteration order is the store order reported by ``KV_KEYS``.
"""

from __future__ import annotations

from jsonpath_rfc9535 import JSONPathQuery

from ndb_server._jsonpath import Location, locations, normalized_path, replace_all
from ndb_server._wirejson import dumps

__all__ = [
    "Map",
    "add",
    "arr_append",
    "clear",
    "clear_set",
    "contains",
    "find",
    "get",
    "remove",
    "set_all",
    "update",
]

Map = dict[str, object]


def set_all(store: Map, keys: dict[str, object]) -> None:
    """Insert or overwrite every member of ``keys`` (in ``keys``' sorted order)."""
    store.update(keys)


def add(store: Map, keys: dict[str, object]) -> None:
    """Insert the members of ``keys`` whose names are not in ``store`` yet."""
    for name, value in keys.items():
        store.setdefault(name, value)


def get(store: Map, names: list[object]) -> dict[str, object]:
    """The requested keys that exist; non-string items are ignored."""
    return {name: store[name] for name in names if isinstance(name, str) and name in store}


def remove(store: Map, names: list[object]) -> None:
    """Remove the requested keys; missing keys and non-string items are ignored."""
    for name in names:
        if isinstance(name, str):
            store.pop(name, None)


def clear(store: Map) -> int:
    """Remove every key; return how many there were."""
    count = len(store)
    store.clear()
    return count


def contains(store: Map, names: list[object]) -> list[str]:
    """Each requested string that exists, in request order, duplicates repeated."""
    return [name for name in names if isinstance(name, str) and name in store]


def clear_set(store: Map, keys: dict[str, object]) -> int:
    """Clear, then set ``keys``; return the number of keys removed by the clear."""
    count = clear(store)
    set_all(store, keys)
    return count


class FindResult:
    """What ``KV_FIND`` collected: matching key names, matched node paths, matching key values."""

    __slots__ = ("keys", "paths", "values")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.paths: list[str] = []
        self.values: dict[str, object] = {}


def find(store: Map, names: list[object] | None, query: JSONPathQuery | None) -> FindResult:
    """Evaluate ``query`` against the value of each listed key (all keys when none listed).

    Non-string names are looked up under their compact JSON text. ``query`` may be None when
    the caller could not compile the path; that is only an error once a value is evaluated,
    which raises ``LookupError`` here.
    """
    if names:
        candidates = [name if isinstance(name, str) else dumps(name) for name in names]
    else:
        candidates = list(store)
    result = FindResult()
    for name in candidates:
        if name not in store:
            continue
        if query is None:
            raise LookupError("invalid JSONPath")
        value = store[name]
        matched = locations(query, value)
        if matched:
            result.keys.append(name)
            result.paths.extend(normalized_path(location) for location in matched)
            result.values[name] = value
    return result


def update(store: Map, name: str, query: JSONPathQuery, new_value: object) -> int:
    """Replace every node ``query`` matches in ``store[name]`` with ``new_value``; count them."""
    matched: list[Location] = locations(query, store[name])
    if matched:
        store[name] = replace_all(store[name], matched, new_value)
    return len(matched)


class NotAppendable(Exception):
    """``KV_ARR_APPEND`` found no array where the server would have thrown (``st`` 1000)."""


def arr_append(store: Map, name: str, member: str | None, items: list[object]) -> None:
    """Append ``items`` to ``store[name]`` or to its member ``member`` (docs/protocol.md §7.12)."""
    value = store[name]
    if member is None:
        if not isinstance(value, list):
            raise NotAppendable(name)
        value.extend(items)
        return
    if not isinstance(value, dict) or member not in value:
        raise NotAppendable(member)
    target = value[member]
    if isinstance(target, list):  # a member that is not an array: success, nothing appended
        target.extend(items)
