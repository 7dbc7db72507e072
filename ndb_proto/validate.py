"""Argument checks shared by every command. Each raises TypeError or ValueError naming the
parameter, so that a bad call fails in the caller before anything is sent.

Subclasses of str, int and float, and any `Mapping` where a dict is expected, are accepted
everywhere (names, paths, values at any depth, the top-level ``keys``); the encoder sends them as
the base type (see `ndb_proto.codec`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from ndb_proto.codec import check_value, plain_json
from ndb_proto.errors import with_cause
from ndb_proto.session import Session

TOKEN_MAX = 2**64 - 1
DURATION_MAX = 9_223_372_036
"""Longest session duration, in seconds, that the server can hold without overflowing (its
duration is converted to signed 64-bit nanoseconds)."""


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_unicode(value: str, param: str) -> None:
    # str.isascii() is O(1); only other strings can hold a lone surrogate, which UTF-8 cannot
    # encode (and a server drops the connection on invalid UTF-8).
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            error = ValueError(
                f"{param} contains a string that is not valid Unicode (a lone surrogate)"
            )
            raise with_cause(error, exc) from exc


def check_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{param} must be a str, got {_type_name(value)}")
    _check_unicode(value, param)
    return value


def check_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{param} must be a bool, got {_type_name(value)}")
    return value


def check_list(value: Any, param: str, of: str) -> list[Any]:
    """A list, tuple or other iterable, as a list. A bare str, bytes or mapping is refused:
    iterating it would send its characters or its keys. ``of`` names what the items are."""
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{param} must be a list or tuple of {of}, got {_type_name(value)}")
    return list(value)


def check_key_list(keys: Any, param: str, *, allow_empty: bool = True) -> list[str]:
    """A list of key names. A bare str is refused: iterating it would send one key per character."""
    names = check_list(keys, param, "str key names")
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"{param}[{index}] must be a str key name, got {_type_name(name)}")
        _check_unicode(name, f"{param}[{index}]")
    if not names and not allow_empty:
        raise ValueError(f"{param} must not be empty")
    return names


def check_keys_object(keys: Any, param: str) -> Mapping[str, Any]:
    """A mapping (a dict or any other `Mapping`) of key name to JSON value, as stored by KV_SET
    and its relatives."""
    if type(keys) is dict and plain_json(keys, 0):  # the usual case, checked first
        return keys
    if not isinstance(keys, Mapping):
        raise TypeError(
            f"{param} must be a dict (or other Mapping) of str to JSON values, got "
            f"{_type_name(keys)}"
        )
    for name, value in keys.items():
        if not isinstance(name, str):
            raise TypeError(f"{param}: key names must be str, got {_type_name(name)} {name!r}")
        check_value(value, f"{param}[{name!r}]")
    return keys


def check_token(tkn: Any, param: str) -> int:
    """A session token: an int in 0..2**64-1. A session object stands for its token."""
    if type(tkn) is int:  # the usual case costs one test
        token: int = tkn
    else:
        if isinstance(tkn, Session):
            # Read as Any: a compiled build would otherwise convert the int-typed attribute, and
            # a Session(True) would pass as the token 1.
            tkn = cast(Any, tkn).tkn
        if isinstance(tkn, bool) or not isinstance(tkn, int):
            raise TypeError(f"{param} must be an int session token, got {_type_name(tkn)}")
        token = int.__int__(tkn)  # an int subclass's own __int__ does not decide what is sent
    if not 0 <= token <= TOKEN_MAX:
        raise ValueError(f"{param} must be in 0..2**64-1, got {token}")
    return token


def check_token_list(tkns: Any, param: str) -> list[int]:
    tokens = check_list(tkns, param, "int session tokens")
    return [check_token(tkn, f"{param}[{index}]") for index, tkn in enumerate(tokens)]


def check_duration(seconds: Any, param: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"{param} must be an int number of seconds, got {_type_name(seconds)}")
    duration = int.__int__(seconds)
    if not 0 <= duration <= DURATION_MAX:
        raise ValueError(f"{param} must be in 0..{DURATION_MAX} seconds, got {duration}")
    return duration


def check_dataset_name(name: Any, param: str) -> str:
    """A dataset name. The server uses it as a raw path part, so anything that could name another
    directory (empty, a separator, ``..``, NUL) is refused."""
    plain = str.__str__(check_str(name, param))  # a str subclass's own __str__ does not count
    if not plain:
        raise ValueError(f"{param} must not be empty")
    for bad in ("/", "\\", "\x00", ".."):
        if bad in plain:
            raise ValueError(
                f"{param} must not contain {bad!r}: the server uses it as a directory name"
            )
    return plain


def check_json(value: Any, param: str) -> Any:
    check_value(value, param)
    return value
