"""JSON text <-> Python values, following the jsoncons rules NemesisDB 0.7.4 shows on the wire.

docs/protocol.md §2.3 lists what a client can observe of the server's JSON library. This module
reproduces it with plain Python values:

* objects are ``dict`` with their members sorted by key (jsoncons keeps objects sorted, so a
  JSONPath query walks members in that order) and a duplicate member keeps its **first** value;
* an integer literal in ``-2**63 .. 2**64-1`` is an ``int`` (``-0`` reads as ``0``); any other
  integer literal becomes a ``str`` holding the literal, the way jsoncons keeps it as a string;
* a literal with ``.`` or an exponent is a ``float`` (so ``10.0`` is never a valid u64 parameter);
  a double that overflows reads as ``None``;
* ``NaN``/``Infinity``, trailing non-whitespace, lone UTF-16 surrogate escapes and nesting deeper
  than 1024 are parse errors (``JsonInvalid``).

Output is compact, with object members sorted by key (code-point order, which is UTF-8 byte
order), non-ASCII written raw and ``/`` unescaped.

Codec choice, measured (CPython 3.11, msgspec 0.22, one reply serialised to ``str``):

===========================================  ===============  ====================
reply                                        stdlib ``json``  ``msgspec`` + decode
===========================================  ===============  ====================
``{"KV_SET_RSP":{"st":1}}``                  1.57 µs          0.21 µs
``KV_GET_RSP`` with 20 small nested values   29.5 µs          4.4 µs
``KV_GET_RSP`` with 12 x 7000-byte strings   127 µs           20 µs
===========================================  ===============  ====================

so replies are written with ``msgspec`` (``order="sorted"``). Decoding stays on the stdlib parser,
because it alone offers the hooks needed for first-wins duplicates, literal-preserving big
integers and the int/float distinction. ``msgspec`` formats doubles exactly like ``repr`` for
magnitudes in ``[1e-4, 1e16)``; outside that range it writes ``1e20`` where jsoncons writes
``1e+20``, so such doubles are parsed into the marker subclass ``ReprFloat`` and written with
``repr`` through the encoder hook (``1e3`` -> ``1000.0``, ``1e20`` -> ``1e+20``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Final

import msgspec

__all__ = [
    "I64_MIN",
    "MAX_NESTING",
    "U64_MAX",
    "JsonInvalid",
    "ReprFloat",
    "deep_copy",
    "dumps",
    "dumps_bytes",
    "is_u64",
    "parse",
]

U64_MAX: Final = 2**64 - 1
I64_MIN: Final = -(2**63)
MAX_NESTING: Final = 1024
"""jsoncons' default ``max_nesting_depth``: 1024 nested containers parse, 1025 do not."""


class JsonInvalid(ValueError):
    """The text is not JSON that jsoncons would accept (reply ``ERR`` 3)."""


class ReprFloat(float):
    """A double whose text must come from ``repr`` (exponent form); see the module docstring."""

    __slots__ = ()


def _object_from_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """Build an object sorted by key where a duplicate member keeps its first value."""
    pairs.sort(key=_pair_key)  # stable: duplicates stay in input order
    obj = dict(pairs)  # last duplicate wins here ...
    if len(obj) != len(pairs):  # ... so redo it the slow way when there were duplicates
        obj = {}
        for key, value in pairs:
            obj.setdefault(key, value)
    return obj


def _pair_key(pair: tuple[str, object]) -> str:
    return pair[0]


def _parse_int(literal: str) -> int | str:
    # 18 characters hold at most 18 digits, which always fit in i64 (and "-" + 17 digits too).
    if len(literal) <= 18:
        return int(literal)
    if len(literal) <= 21:  # the longest in-range literal is "-9223372036854775808" (20 chars)
        value = int(literal)
        if I64_MIN <= value <= U64_MAX:
            return value
    return literal


def _parse_float(literal: str) -> float | None:
    value = float(literal)
    if math.isinf(value):
        return None
    magnitude = abs(value)
    if magnitude != 0.0 and not 1e-4 <= magnitude < 1e16:
        return ReprFloat(value)
    return value


def _reject_constant(name: str) -> object:
    raise JsonInvalid(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object_from_pairs,
    parse_int=_parse_int,  # may return str by design: out-of-range literals stay text
    parse_float=_parse_float,
    parse_constant=_reject_constant,
    strict=True,
)

_STRING_RE: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE: Final = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE_RE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")


def _nesting_depth(text: str) -> int:
    """Deepest container nesting in ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKET_RE.findall(_STRING_RE.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _has_lone_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE_RE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse(text: str) -> object:
    """Parse one JSON text with the jsoncons rules; raise ``JsonInvalid`` on failure.

    The caller must allow about ``MAX_NESTING`` frames of recursion headroom (the stdlib
    scanner recurses once per nesting level).
    """
    if text.count("[") + text.count("{") > MAX_NESTING and _nesting_depth(text) > MAX_NESTING:
        raise JsonInvalid("nesting too deep")
    try:
        value: object = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise JsonInvalid(str(exc)) from exc
    if _SURROGATE_ESCAPE_RE.search(text) and _has_lone_surrogate(value):
        raise JsonInvalid("lone surrogate escape")
    return value


def _encode_hook(value: object) -> msgspec.Raw:
    if isinstance(value, ReprFloat):
        return msgspec.Raw(float.__repr__(value).encode())
    raise TypeError(f"not a JSON value: {type(value).__name__}")


_ENCODER: Final = msgspec.json.Encoder(order="sorted", enc_hook=_encode_hook)
_encode: Final[Callable[[object], bytes]] = _ENCODER.encode


def dumps_bytes(value: object) -> bytes:
    """Compact, key-sorted UTF-8 JSON for ``value``."""
    return _encode(value)


def dumps(value: object) -> str:
    """Compact, key-sorted JSON text for ``value`` (non-ASCII raw, ``/`` unescaped)."""
    return _encode(value).decode()


def is_u64(value: object) -> bool:
    """True for what jsoncons stores as an integer in ``0..2**64-1`` (never a bool)."""
    return type(value) is int and 0 <= value <= U64_MAX


def deep_copy(value: object) -> object:
    """Copy a JSON value so the copy shares no container with the original."""
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_copy(item) for item in value]
    return value
