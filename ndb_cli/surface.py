"""The commands the CLI offers, read from `ndb_proto.calls.SURFACE`.

Nothing here names a command: each function of the command surface (the same one the clients
are generated from) becomes a `CommandSpec`, and each of its parameters a `ParamSpec` whose
`Kind` follows from its type annotation. A command added to ``calls.py`` therefore appears in
the CLI, with its parameters, help and completions, without any CLI code.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ndb_proto import calls
from ndb_proto.session import Session

KEY_PARAMETERS = frozenset({"key", "keys"})
"""Parameters with these names hold key names (completed from the server's keys)."""


class Kind(enum.Enum):
    """How a word typed for a parameter becomes its value."""

    WORD = "word"  # a string taken as typed: key names, dataset names, paths
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TOKEN = "token"  # a session token (an integer)
    CHOICE = "choice"  # one of a fixed set of words
    OBJECT = "object"  # a JSON object
    JSON = "json"  # any JSON value


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its name, how its words are read, whether it takes several words (a list
    parameter), whether it must be given, and its choices when it has a fixed set."""

    name: str
    kind: Kind
    many: bool
    required: bool
    default: Any
    choices: tuple[str, ...] = ()

    @property
    def positional(self) -> bool:
        """Required and list parameters are given by position; the others as ``--name``."""
        return self.required or self.many

    @property
    def holds_keys(self) -> bool:
        return self.name in KEY_PARAMETERS and self.kind is Kind.WORD

    def metavar(self, option: bool = False) -> str:
        """How usage lines show the parameter's value."""
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        if option:
            return self.name if self.kind is Kind.WORD else self.kind.value
        text = self.name if self.kind is Kind.WORD else f"{self.name}:{self.kind.value}"
        return text + "..." if self.many else text


@dataclass(frozen=True)
class CommandSpec:
    """One command: the surface function, its parameters and its docstring."""

    name: str
    function: Callable[..., Any]
    params: tuple[ParamSpec, ...]
    doc: str
    returns_session: bool
    returns_nothing: bool

    @property
    def summary(self) -> str:
        """The first sentence of the docstring."""
        first = " ".join(self.doc.split("\n\n")[0].split())
        return first.split(". ")[0].rstrip(".") + "."

    def usage(self) -> str:
        parts = [self.name]
        for param in self.params:
            if param.positional:
                text = param.metavar()
                parts.append(text if param.required else f"[{text}]")
            elif param.kind is Kind.BOOLEAN:
                parts.append(f"[--{param.name}]")
            else:
                parts.append(f"[--{param.name} {param.metavar(option=True)}]")
        return " ".join(parts)

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)


def _classify(annotation: Any) -> tuple[Kind, bool, tuple[str, ...]]:
    """(kind, many, choices) for a parameter's type; anything unknown is read as JSON."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if Session in members or (int in members and len(members) == 2):
            return Kind.TOKEN, False, ()
        if len(members) == 1:
            return _classify(members[0])
        return Kind.JSON, False, ()
    if origin is typing.Literal:
        return Kind.CHOICE, False, tuple(str(a) for a in args)
    if origin is collections.abc.Mapping or annotation is dict or origin is dict:
        return Kind.OBJECT, False, ()
    if origin in (collections.abc.Iterable, collections.abc.Sequence, list):
        kind, _, choices = _classify(args[0] if args else Any)
        return kind, True, choices
    if annotation is bool:
        return Kind.BOOLEAN, False, ()
    if annotation is int:
        return Kind.INTEGER, False, ()
    if annotation is str:
        return Kind.WORD, False, ()
    return Kind.JSON, False, ()


def _spec(function: Callable[..., Any]) -> CommandSpec:
    hints = typing.get_type_hints(function)
    params = []
    for parameter in inspect.signature(function).parameters.values():
        kind, many, choices = _classify(hints.get(parameter.name, Any))
        required = parameter.default is inspect.Parameter.empty
        default = None if required else parameter.default
        params.append(ParamSpec(parameter.name, kind, many, required, default, choices))
    result = typing.get_args(hints.get("return"))
    returned = result[0] if result else Any
    return CommandSpec(
        name=function.__name__,
        function=function,
        params=tuple(params),
        doc=inspect.cleandoc(function.__doc__ or ""),
        returns_session=returned is Session,
        returns_nothing=returned is type(None),
    )


@cache
def commands() -> dict[str, CommandSpec]:
    """Every command of the surface by name, in the surface's order."""
    return {function.__name__: _spec(function) for function in calls.SURFACE}
