"""JSONPath for ``KV_FIND`` / ``KV_UPDATE`` on top of ``jsonpath-rfc9535``.

The server evaluates jsoncons JSONPath with ``result_options::path | nodups`` against one key's
value. We use the RFC 9535 implementation by jg-rp (``jsonpath-rfc9535``) rather than its sibling
``python-jsonpath`` because it is strict where jsoncons is strict: ``""`` and ``"x"`` are syntax
errors there (``python-jsonpath`` compiles both), and its node paths are RFC 9535 normalized
paths, the exact format the server reports (``$['make']``, ``$[0]['make']``). The vector paths
(``$[?(@.doors > 4)]``, ``$[?(@.make == 'Kia')]``, ``$..make``, ``$.name``, ``$``) are all valid
RFC 9535, where a parenthesised filter is an ordinary logical expression.

jsoncons extensions beyond RFC 9535 (its own function set, unions of filters, ...) are not
supported; such paths are reported as invalid.
"""

from __future__ import annotations

import functools
from typing import Final

from jsonpath_rfc9535 import JSONPathEnvironment, JSONPathQuery

from ndb_server._wirejson import deep_copy

__all__ = ["Location", "compile_path", "locations", "normalized_path", "replace_all"]

Location = tuple[int | str, ...]
"""Member names and array indices from a value's root to one node."""


class _Environment(JSONPathEnvironment):
    """RFC 9535 with limits widened towards jsoncons: 64-bit indices, 1024-deep values."""

    max_int_index = 2**63 - 1
    min_int_index = -(2**63)
    max_recursion_depth = 1100


_ENV: Final = _Environment()


@functools.lru_cache(maxsize=256)
def compile_path(expression: str) -> JSONPathQuery:
    """Compile ``expression``; raises ``jsonpath_rfc9535.JSONPathError`` when invalid."""
    return _ENV.compile(expression)


def locations(query: JSONPathQuery, value: object) -> list[Location]:
    """Locations of the nodes ``query`` selects in ``value``, first occurrence kept (``nodups``)."""
    seen: set[Location] = set()
    found: list[Location] = []
    for node in query.finditer(value):  # type: ignore[arg-type]  # any JSON value is accepted
        location = node.location
        if location not in seen:
            seen.add(location)
            found.append(location)
    return found


def normalized_path(location: Location) -> str:
    """The RFC 9535 normalized path of ``location`` (``$``, ``$['a']``, ``$[0]['b']``)."""
    return "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f"[{_quote(part)}]" for part in location
    )


def _quote(name: str) -> str:
    out = ["'"]
    for char in name:
        if char == "'":
            out.append("\\'")
        elif char == "\\":
            out.append("\\\\")
        elif char < " ":
            out.append(_CONTROL_ESCAPES.get(char, f"\\u{ord(char):04x}"))
        else:
            out.append(char)
    out.append("'")
    return "".join(out)


_CONTROL_ESCAPES: Final = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def replace_all(root: object, targets: list[Location], new_value: object) -> object:
    """Replace every node at ``targets`` with its own copy of ``new_value``; return the new root.

    Locations are handled in descending order, so a node is always replaced before any of its
    ancestors (jsoncons updates with ``sort_descending`` for the same reason) and every location
    is still valid when it is reached. The empty location replaces the root itself. Nothing is
    ever created: the targets come from a query over ``root``.
    """
    for location in sorted(targets, key=_sort_key, reverse=True):
        replacement = deep_copy(new_value)
        if not location:
            root = replacement
            continue
        parent = root
        for part in location[:-1]:
            parent = parent[part]  # type: ignore[index]  # a query result: the path exists
        parent[location[-1]] = replacement  # type: ignore[index]
    return root


def _sort_key(location: Location) -> tuple[tuple[int, int | str], ...]:
    # Mixed int/str parts are not comparable; tag them so any two locations compare.
    return tuple((0, part) if isinstance(part, int) else (1, part) for part in location)
