"""How results are printed: JSON, indented and coloured for people, one compact line for pipes.

A session prints as its token. Colour uses plain ANSI escapes, so the one-shot mode needs no
library beyond the standard one.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Protocol

from ndb_proto.session import Session

_RESET = "\x1b[0m"
_COLOURS = {
    "key": "\x1b[34;1m",  # object member names
    "string": "\x1b[32m",
    "number": "\x1b[36m",
    "literal": "\x1b[35m",  # true, false, null
}
_TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")(?P<colon>\s*:)?'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<literal>true|false|null)"
)


def _plain(value: Any) -> Any:
    if isinstance(value, Session):
        return value.tkn
    raise TypeError(f"cannot print a {type(value).__name__}")


def to_json(value: Any, *, pretty: bool) -> str:
    """``value`` as JSON text, multi-line when ``pretty``."""
    if pretty:
        return json.dumps(value, indent=2, ensure_ascii=False, default=_plain)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain)


def colourise(text: str) -> str:
    """Add ANSI colours to JSON text (names, strings, numbers and literals differ)."""

    def paint(match: re.Match[str]) -> str:
        if match.group("string") is not None:
            colour = _COLOURS["key" if match.group("colon") else "string"]
            return colour + match.group("string") + _RESET + (match.group("colon") or "")
        kind = "number" if match.group("number") is not None else "literal"
        return _COLOURS[kind] + match.group(0) + _RESET

    return _TOKEN.sub(paint, text)


class Stream(Protocol):
    """Where results go: a text file such as ``sys.stdout``."""

    def isatty(self) -> bool: ...
    def write(self, text: str, /) -> Any: ...
    def flush(self) -> None: ...


class Printer:
    """Prints results in the chosen style; ``pretty``/``colour`` None means: decide by whether
    the stream is a terminal (and colour also by the ``NO_COLOR`` convention)."""

    def __init__(self, stream: Stream, *, pretty: bool | None, colour: bool | None) -> None:
        tty = stream.isatty()
        self.stream = stream
        self.pretty = tty if pretty is None else pretty
        self.colour = (tty and not os.environ.get("NO_COLOR")) if colour is None else colour

    def format(self, value: Any) -> str:
        text = to_json(value, pretty=self.pretty)
        return colourise(text) if self.colour else text

    def show(self, value: Any) -> None:
        self.stream.write(self.format(value) + "\n")
        self.stream.flush()
