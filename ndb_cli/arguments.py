"""Binding a command's words to its parameters.

The rules, the same for every command (they follow from `ndb_cli.surface`):

* ``--name value`` (or ``--name=value``) sets any parameter; a list parameter's option may be
  repeated, one item each; a boolean option alone (``--extendOnGet``) means true.
* The other words fill, in order, the parameters that are required or take a list; a list
  parameter takes every word the later ones do not need. ``--`` ends the options.
* Key names and other words are taken as typed (a key named ``1`` stays the string "1"); tokens
  and integers are read as integers; objects and values as JSON.

A word that cannot be read raises `UsageError` naming the parameter, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ndb_cli.surface import CommandSpec, Kind, ParamSpec
from ndb_cli.words import Text, UsageError, Value, Word
from ndb_proto.session import Session

_TRUE = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _scalar(param: ParamSpec, word: Word) -> Any:
    if isinstance(word, Value):
        return _from_value(param, word.value)
    kind = param.kind
    if kind in (Kind.WORD, Kind.CHOICE):
        return word.as_text()
    if kind in (Kind.INTEGER, Kind.TOKEN):
        text = word.as_text()
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{param.name}: expected an integer, got {text!r}") from None
    if kind is Kind.BOOLEAN:
        text = word.as_text().lower()
        if text not in _TRUE:
            raise UsageError(f"{param.name}: expected true or false, got {word.raw!r}")
        return _TRUE[text]
    try:
        return word.as_json()
    except ValueError:
        hint = " (quote a string as JSON: '\"text\"')" if kind is Kind.JSON else ""
        raise UsageError(f"{param.name}: not valid JSON: {word.raw!r}{hint}") from None


def _from_value(param: ParamSpec, value: Any) -> Any:
    """A variable's value for a parameter: a session stands for its token."""
    if isinstance(value, Session) and param.kind in (Kind.TOKEN, Kind.INTEGER, Kind.JSON):
        return value.tkn
    return value


def _items(param: ParamSpec, word: Word) -> list[Any]:
    """The list items one word gives: a variable holding a list gives all of its items."""
    if isinstance(word, Value) and isinstance(word.value, list):
        return [_from_value(param, item) for item in word.value]
    return [_scalar(param, word)]


def _option(spec: CommandSpec, words: Sequence[Word], index: int) -> tuple[ParamSpec, Word, int]:
    """The parameter, value word and next index of the option at ``words[index]``."""
    word = words[index]
    assert isinstance(word, Text)
    name, equals, inline = word.raw[2:].partition("=")
    param = spec.param(name)
    if param is None:
        known = ", ".join(f"--{p.name}" for p in spec.params) or "none"
        raise UsageError(f"{spec.name}: unknown option --{name} (options: {known})")
    if equals:
        return param, Text(inline, word.verbatim), index + 1
    following = words[index + 1] if index + 1 < len(words) else None
    if param.kind is Kind.BOOLEAN and not (
        isinstance(following, Text) and following.as_text().lower() in _TRUE
    ):
        return param, Text("true"), index + 1
    if following is None:
        raise UsageError(f"{spec.name}: option --{name} needs a value")
    return param, following, index + 2


@dataclass(frozen=True)
class Layout:
    """Which parameter each word goes to, before any word is read as a value."""

    named: list[tuple[ParamSpec, Word]]  # from options, in order
    positional: list[tuple[ParamSpec, Word]]  # the other words, in their slots
    extra: list[Word]  # words no slot takes


def layout(spec: CommandSpec, words: Sequence[Word]) -> Layout:
    """Where the words of a command go, by the rules above: `bind` reads the values from it,
    and the shell's completion asks it where the next word would go, so the two agree."""
    named: list[tuple[ParamSpec, Word]] = []
    positional: list[Word] = []
    index = 0
    options_ended = False
    while index < len(words):
        word = words[index]
        if not options_ended and isinstance(word, Text) and word.raw == "--":
            options_ended = True
            index += 1
        elif not options_ended and isinstance(word, Text) and word.raw.startswith("--"):
            param, value_word, index = _option(spec, words, index)
            named.append((param, value_word))
        else:
            positional.append(word)
            index += 1
    given = {param.name for param, _ in named}
    slots = [p for p in spec.params if p.positional and p.name not in given]
    placed: list[tuple[ParamSpec, Word]] = []
    remaining = positional
    for number, param in enumerate(slots):
        later_required = sum(1 for p in slots[number + 1 :] if p.required and not p.many)
        take = max(0, len(remaining) - later_required) if param.many else min(1, len(remaining))
        placed += [(param, word) for word in remaining[:take]]
        remaining = remaining[take:]
    return Layout(named, placed, remaining)


def bind(spec: CommandSpec, words: Sequence[Word]) -> dict[str, Any]:
    """The keyword arguments for ``spec``'s function from ``words``."""
    found = layout(spec, words)
    values: dict[str, Any] = {}
    for param, word in found.named:
        if param.many:
            values.setdefault(param.name, []).extend(_items(param, word))
        elif param.name in values:
            raise UsageError(f"{spec.name}: {param.name} is given twice")
        else:
            values[param.name] = _scalar(param, word)
    for param, word in found.positional:
        if param.many:
            values.setdefault(param.name, []).extend(_items(param, word))
        else:
            values[param.name] = _scalar(param, word)
    if found.extra:
        extra = " ".join(w.raw if isinstance(w, Text) else json.dumps(w.value) for w in found.extra)
        raise UsageError(f"{spec.name}: too many arguments: {extra}")
    missing = [p.name for p in spec.params if p.required and p.name not in values]
    if missing:
        raise UsageError(f"{spec.name}: missing {', '.join(missing)} (usage: {spec.usage()})")
    return values
