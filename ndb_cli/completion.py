"""What the shell completes: command names, ``--parameter`` names, choices, and key names
fetched from the server (cached until the next command, which may have changed them).

`complete` decides from the text before the cursor alone; `ShellCompleter` adapts it to
prompt_toolkit and fetches key names asynchronously on the first Tab that needs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Iterable
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ndb_cli.arguments import layout
from ndb_cli.surface import CommandSpec, Kind, ParamSpec, commands
from ndb_cli.variables import Variables
from ndb_cli.words import IncompleteInput, Text, UsageError, split_words
from ndb_transports.asyncio import NdbClient

FETCH_TIMEOUT = 2.0
"""Seconds a Tab waits for key names before completing without them."""

MAX_NAMES = 10_000
"""Key names kept for completion (a huge store is not listed whole)."""


@dataclass(frozen=True)
class Want:
    """What the word at the cursor can be: ``prefix`` is its start, and the other fields say
    which candidates fit (several may)."""

    prefix: str
    words: tuple[str, ...] = ()  # fixed candidates: commands, options, choices, variables
    kv_keys: bool = False
    session_of: str | None = None  # the token word whose session's keys fit


def _param_at(spec: CommandSpec, before: list[str]) -> ParamSpec | None:
    """The parameter the next word would go to, after the words ``before`` (no command): where
    `ndb_cli.arguments.layout`, the rules the command is run by, puts a word added there."""
    following = Text("")
    try:
        found = layout(spec, [*(Text(word) for word in before), following])
    except UsageError:
        return None  # an unknown option: no telling
    return next(
        (param for param, word in found.named + found.positional if word is following), None
    )


def complete(text: str, extra_commands: Iterable[str] = ()) -> Want | None:
    """What fits at the end of ``text``; None when nothing does (inside a JSON value)."""
    try:
        words = split_words(text)
    except (IncompleteInput, UsageError):
        return None
    if not text or text[-1].isspace():
        words.append("")
    prefix = words[-1]
    if len(words) == 1:
        return Want(prefix, words=(*commands(), *extra_commands))
    if words[0] == "help" and len(words) == 2:
        return Want(prefix, words=tuple(commands()))
    spec = commands().get(words[0])
    if spec is None:
        return None
    before = words[1:-1]
    if prefix.startswith("-"):
        given = {w[2:].partition("=")[0] for w in before if w.startswith("--")}
        options = (f"--{p.name}" for p in spec.params if p.name not in given or p.many)
        return Want(prefix, words=tuple(options))
    param = _param_at(spec, before)
    if param is None:
        return None
    if param.choices:
        return Want(prefix, words=param.choices)
    if param.kind is Kind.TOKEN:
        return Want(prefix, words=("$tkn",))
    if not param.holds_keys:
        return None
    token = spec.params[0] if spec.params and spec.params[0].kind is Kind.TOKEN else None
    if token is None:
        return Want(prefix, kv_keys=True)
    token_word = next((w for w in before if not w.startswith("--")), None)
    return Want(prefix, session_of=token_word)


class KeyNames:
    """Key names from the server, fetched when first needed and forgotten after each command."""

    def __init__(self, client: NdbClient, variables: Variables) -> None:
        self.client = client
        self.variables = variables
        self._kv: list[str] | None = None
        self._sessions: dict[int, list[str]] = {}

    def forget(self) -> None:
        self._kv = None
        self._sessions.clear()

    async def kv(self) -> list[str]:
        if self._kv is None:
            names = await self._fetch(self.client.kv_keys(timeout=FETCH_TIMEOUT))
            if names is None:
                return []
            self._kv = names
        return self._kv

    async def session(self, token_word: str | None) -> list[str]:
        token = self._token(token_word)
        if token is None:
            return []
        if token not in self._sessions:
            names = await self._fetch(self.client.sh_keys(token, timeout=FETCH_TIMEOUT))
            if names is None:
                return []
            self._sessions[token] = names
        return self._sessions[token]

    def _token(self, word: str | None) -> int | None:
        if word == "$tkn":
            return self.variables.tkn
        try:
            return int(Text(word).as_text()) if word else None
        except ValueError:
            return None

    @staticmethod
    async def _fetch(request: Awaitable[list[str]]) -> list[str] | None:
        try:
            names = await asyncio.wait_for(request, FETCH_TIMEOUT)
        except Exception:
            return None  # completion is a convenience: no names rather than an error
        return sorted(str(name) for name in names)[:MAX_NAMES]


def _quoted(name: str) -> str:
    """A key name as a word that splits back to it."""
    if name and not any(c.isspace() or c in "\"'{}[]" for c in name):
        return name
    return "'" + name + "'" if "'" not in name else '"' + name.replace('"', '\\"') + '"'


class ShellCompleter(Completer):
    """prompt_toolkit's view of `complete`."""

    def __init__(self, names: KeyNames, extra_commands: Iterable[str]) -> None:
        self.names = names
        self.extra = tuple(extra_commands)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        want = complete(document.text_before_cursor, self.extra)
        if want is not None:
            yield from _matching(want.prefix, want.words, quote=False)

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        want = complete(document.text_before_cursor, self.extra)
        if want is None:
            return
        names: list[str] = []
        if want.kv_keys:
            names = await self.names.kv()
        elif want.session_of is not None:
            names = await self.names.session(want.session_of)
        for completion in _matching(want.prefix, want.words, quote=False):
            yield completion
        for completion in _matching(want.prefix, names, quote=True):
            yield completion


def _matching(prefix: str, candidates: Iterable[str], *, quote: bool) -> Iterable[Completion]:
    """Completions replacing ``prefix``; key names match on their text, quotes aside."""
    typed = prefix.lstrip("'\"") if quote else prefix
    for candidate in candidates:
        if candidate.startswith(typed):
            text = _quoted(candidate) if quote else candidate
            yield Completion(text, start_position=-len(prefix))
