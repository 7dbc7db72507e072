"""Splitting a typed line (a script line or shell input) into words.

Typed lines hold JSON, so words are split on whitespace only outside JSON strings and brackets:
``kv_set {"a b": [1, 2]}`` is two words. A word can be quoted: ``"a b"`` is read as a JSON string
and ``'a b'`` literally, so a key name can hold spaces. A quote opens only at the start of a word
(and a ``"`` inside brackets, where JSON strings are), so ``it's`` is a plain word and does not
swallow the lines after it. Arguments given on the process command
line are already split by the user's shell and are taken verbatim instead (`Text.verbatim`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class IncompleteInput(ValueError):
    """The text ends inside a JSON string or bracket: more lines are needed."""


class UsageError(ValueError):
    """The words do not make a valid command; nothing is sent."""


@dataclass(frozen=True)
class Text:
    """A word as typed. ``verbatim`` words (process arguments) are never unquoted."""

    raw: str
    verbatim: bool = False

    def as_text(self) -> str:
        raw = self.raw
        if self.verbatim or len(raw) < 2:
            return raw
        if raw[0] == raw[-1] == '"':
            try:
                value = json.loads(raw)
            except ValueError:
                return raw
            return value if isinstance(value, str) else raw
        if raw[0] == raw[-1] == "'":
            return raw[1:-1]
        return raw

    def as_json(self) -> Any:
        """The word as a JSON value; ValueError when it is not JSON."""
        raw = self.raw
        if not self.verbatim and len(raw) >= 2 and raw[0] == raw[-1] == "'":
            raw = raw[1:-1]
        return json.loads(raw)


@dataclass(frozen=True)
class Value:
    """A value that was not typed: a shell variable such as ``$_`` or ``$tkn``."""

    value: Any


Word = Text | Value

_OPEN = {"{": "}", "[": "]"}
_CLOSE = {"}", "]"}


def split_words(line: str) -> list[str]:
    """The words of ``line``; raises `IncompleteInput` when a string or bracket is still open
    and `UsageError` for a closing bracket that matches nothing."""
    words: list[str] = []
    current: list[str] = []
    stack: list[str] = []
    quote = ""  # '"' inside a JSON string, "'" inside a literal word
    escaped = False
    for char in line:
        if quote:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char.isspace() and not stack:
            if current:
                words.append("".join(current))
                current = []
            continue
        starts_word = not current
        current.append(char)
        if (char == '"' and (starts_word or stack)) or (char == "'" and starts_word and not stack):
            quote = char
        elif char in _OPEN:
            stack.append(_OPEN[char])
        elif char in _CLOSE and (not stack or stack.pop() != char):
            raise UsageError(f"unexpected {char!r}")
    if quote or stack:
        raise IncompleteInput("the input ends inside " + ("a string" if quote else "brackets"))
    if current:
        words.append("".join(current))
    return words


def is_complete(text: str) -> bool:
    """True when ``text`` can be split (no string or bracket left open)."""
    try:
        split_words(text)
    except IncompleteInput:
        return False
    except UsageError:
        return True  # complete, and wrong: let the caller report it
    return True
