"""JSON encoding of requests and decoding of replies.

The codec is msgspec, chosen by measurement (``bench/bench_codec.py`` prints the comparison):
it is the fastest codec that passes our correctness checks. Stdlib ``json`` is 4-20x slower on
our request/reply shapes; orjson is about as fast but decodes an integer beyond 64 bits as a
float, silently losing digits. Session tokens are
u64 values, often above 2**63, and must round-trip exactly.

Values are checked before encoding (`check_value`), because the server cannot store everything
Python can express: NaN and infinities are not JSON, integers outside the signed/unsigned 64-bit
ranges come back as strings, and nesting beyond the decoder's depth could not be read back.

The checks accept what Python code commonly holds in place of the exact JSON types: subclasses of
str, int and float (a ``str``-based enum, ``numpy.float64``, ``numpy.str_``) and any `Mapping`
(``ChainMap``, ``MappingProxyType``). msgspec encodes only the exact types and dict subclasses
itself, so the encoder's ``enc_hook`` (`_as_json_type`) turns the others into their base type.
msgspec calls the hook only for objects it cannot encode, so the usual exact types cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec

# Defined with every other error; re-exported (``as``) where it used to be defined.
from ndb_proto.errors import DecodeError as DecodeError
from ndb_proto.errors import with_cause

MAX_VALUE_DEPTH = 512
"""Deepest nesting of arrays/objects accepted inside a value.

NemesisDB parses up to 1024 levels, but a reply carrying a value must also be decodable by the
client (msgspec follows Python's recursion limit), so we keep a wide margin below both.
"""

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


def _as_json_type(obj: Any) -> Any:
    """The encoder's hook for the values our checks accept but msgspec does not encode itself:
    the value as its base type, by the base type's own conversion (a subclass's ``__str__`` or
    ``__int__`` may say something else)."""
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):  # bool never gets here: msgspec encodes it
        return int.__int__(obj)
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    # Every value is checked first, so only a caller of encode() that skipped the checks gets here.
    raise TypeError(f"{type(obj).__name__} is not JSON-encodable")


_encode = msgspec.json.Encoder(enc_hook=_as_json_type).encode
_decode = msgspec.json.Decoder().decode


def encode(obj: Any) -> bytes:
    """Encode an already-checked object as compact UTF-8 JSON."""
    return _encode(obj)


def decode(data: bytes | str) -> Any:
    """Decode one JSON text; raises `DecodeError` (a `ValueError`) when it is not valid JSON."""
    try:
        return _decode(data)
    except RecursionError:
        # msgspec gives up on nesting deeper than Python's recursion limit allows.
        raise with_cause(DecodeError("JSON is nested too deeply to decode"), None) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # Releases of msgspec differ in how they report invalid UTF-8 (their own DecodeError or
        # a UnicodeDecodeError, in their own words), so the cause is established here.
        raise with_cause(DecodeError(_why_undecodable(data, exc)), None) from None


def _why_undecodable(data: bytes | str, exc: Exception) -> str:
    if isinstance(data, bytes):
        try:
            data.decode()
        except UnicodeDecodeError:
            return "text is not valid UTF-8"
    return f"not valid JSON ({exc})"


def _describe(where: str, crumb: Any) -> str:
    parts: list[str] = []
    while crumb is not None:
        crumb, segment = crumb
        parts.append(segment)
    return where + "".join(reversed(parts))


def check_value(value: Any, where: str) -> None:
    """Raise TypeError/ValueError, naming ``where`` and the path inside it, if ``value`` cannot be
    stored by NemesisDB exactly as given."""
    t = type(value)
    if t is dict or t is list:
        ok = plain_json(value, 0)
    elif t is int:
        ok = INT_MIN <= value <= INT_MAX
    elif t is float:
        ok = math.isfinite(value)
    else:
        ok = t is str or t is bool or value is None
    if not ok:
        _check_tree(value, where)


def plain_json(value: Any, depth: int) -> bool:
    """True when ``value`` is made only of the exact JSON types, all storable. The fast check for
    the common case; anything else (subclasses, errors, a stack too deep for recursion) goes to
    `_check_tree`, which accepts subclasses and explains errors."""
    try:
        return _plain(value, depth)
    except RecursionError:
        return False


def _plain(value: Any, depth: int) -> bool:
    if depth >= MAX_VALUE_DEPTH:
        return False
    items = value.values() if type(value) is dict else value
    if type(value) is dict:
        for key in value:
            if type(key) is not str:
                return False
    for item in items:
        t = type(item)
        if t is str or t is bool or item is None:
            continue
        if t is int:
            if not INT_MIN <= item <= INT_MAX:
                return False
        elif t is float:
            if not math.isfinite(item):
                return False
        elif t is dict or t is list:
            if not _plain(item, depth + 1):
                return False
        else:
            return False
    return True


def _check_tree(root: Any, where: str) -> None:
    # Iterative walk, so that depth is limited by our rule rather than by Python's stack. Paths
    # are kept as linked crumbs and only rendered when there is an error to report.
    stack: list[tuple[Any, int, Any]] = [(root, 0, None)]
    while stack:
        value, depth, crumb = stack.pop()
        if isinstance(value, str) or value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                raise ValueError(
                    f"{_describe(where, crumb)}: integer {value} is outside the 64-bit range "
                    f"[-2**63, 2**64-1]; the server would store it as a string"
                )
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(
                    f"{_describe(where, crumb)}: {value!r} is not a JSON number (NaN and "
                    f"infinities cannot be stored)"
                )
            continue
        if depth >= MAX_VALUE_DEPTH:
            raise ValueError(f"{where}: nested deeper than {MAX_VALUE_DEPTH} levels")
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                stack.append((item, depth + 1, (crumb, f"[{index}]")))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(
                        f"{_describe(where, crumb)}: object keys must be str, got "
                        f"{type(key).__name__} {key!r}"
                    )
                stack.append((item, depth + 1, (crumb, f"[{key!r}]")))
        else:
            raise TypeError(
                f"{_describe(where, crumb)}: {type(value).__name__} is not JSON-encodable "
                f"(use a dict or other Mapping, list, tuple, str, int, float, bool or None)"
            )
