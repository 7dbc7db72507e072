"""What ``python -m ndb_transports._generate`` derives from the declarations beside the command
surfaces: the constructors from the options (`ndb_proto.options.ProtocolOptions` and
`ndb_transports._options.ClientOptions`), and the docs from the options and the lifecycle table
(`ndb_proto.states`).

The constructors are generated, not written, so that type checkers and IDEs see every keyword
with its type and default while the options stay declared in one place. Their signatures are
one line each (as in the generated command surfaces), so the option lists are not repeated
line by line in the source.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

from ndb_proto import states
from ndb_proto.options import ProtocolOptions
from ndb_server.options import ServerOptions
from ndb_transports._options import ClientOptions, SyncOptions

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

DEBUG_DOC = (
    "Log to stderr at DEBUG level through `logging` (logger ``ndb``), as NemesisDB's client does. "
    "Positional, as in NemesisDB's client."
)

GENERATED = (
    "Generated: do not edit. Change the declarations and run "
    "``python -m ndb_transports._generate``."
)


def _parameter(declared: Field[Any]) -> str:
    return f"{declared.name}: {declared.type} = {declared.default!r}"


def _client_fields() -> list[Field[Any]]:
    """The flavours' options: their own first (timeout, ssl), then the core's."""
    core = {declared.name for declared in fields(ProtocolOptions)}
    every = fields(ClientOptions)
    return [f for f in every if f.name not in core] + [f for f in every if f.name in core]


def _docs(entries: list[tuple[str, str]], indent: str) -> str:
    paragraphs = []
    for name, doc in entries:
        paragraphs.append(
            textwrap.fill(
                f"``{name}``: {doc}",
                width=100,
                initial_indent=indent,
                subsequent_indent=indent,
            )
        )
    return "\n".join(paragraphs)


def render_protocol_keywords() -> str:
    declared = fields(ProtocolOptions)
    parameters = ", ".join(
        ["self", "uris: str | Sequence[str]", "*"]
        + [_parameter(f) for f in declared]
        + ["random: Callable[[], float] = _random.random"]
    )
    arguments = ", ".join(f"{f.name}={f.name}" for f in declared)
    properties = "".join(
        f"    @property\n    def {f.name}(self) -> {f.type}: return self.options.{f.name}\n"
        for f in declared
    )
    return f'''"""`ClientProtocol`'s keyword arguments and option attributes, derived from
`ndb_proto.options.ProtocolOptions`.
{GENERATED}"""

# ruff: noqa: E501
# fmt: off

from __future__ import annotations

import random as _random
from collections.abc import Callable, Sequence

from ndb_proto.options import ProtocolOptions
from ndb_proto.reconnect import Backoff


class ProtocolKeywords:
    """One keyword argument, and one read-only attribute, per option of `ProtocolOptions`."""

    options: ProtocolOptions

    def __init__({parameters}) -> None:
        """A client core for ``uris``: one server's ``ws://`` or ``wss://`` URI, or a pool of
        them tried in turn. Each keyword is the option of that name, whose meaning, default and
        check are declared in `ndb_proto.options.ProtocolOptions`; ``random`` draws the
        backoff's jitter. Raises ValueError for a bad URI or option, before any I/O."""
        self._configure(uris, ProtocolOptions({arguments}), random)

    def _configure(
        self, uris: str | Sequence[str], options: ProtocolOptions, random: Callable[[], float]
    ) -> None:
        raise NotImplementedError

{properties}'''


def _keywords_class(
    name: str, base: str, doc: str, declared: list[Field[Any]], options: str
) -> str:
    parameters = ", ".join(["self", "debug: bool = False", "*"] + [_parameter(f) for f in declared])
    arguments = ", ".join(f"{f.name}={f.name}" for f in declared)
    docs = _docs([("debug", DEBUG_DOC)] + [(f.name, f.metadata["doc"]) for f in declared], " " * 8)
    return f'''

class {name}{base}:
    """{doc}"""

    def __init__({parameters}) -> None:
        """Configure the client; nothing connects until ``open``. Invalid options raise
        ValueError or TypeError naming the option.

{docs}
        """
        self._configure(debug, {options}({arguments}))
'''


def render_client_keywords() -> str:
    every = _keywords_class(
        "ClientKeywords",
        "",
        "``NdbClient(debug=False, *, option=value, ...)``, the same in every flavour.",
        _client_fields(),
        "ClientOptions",
    )
    blocking = _keywords_class(
        "SyncClientKeywords",
        "(ClientKeywords)",
        "The blocking client's constructor: every flavour's options, and its ``clock``.",
        _client_fields() + _sync_only_fields(),
        "SyncOptions",
    )
    return f'''"""The flavours' constructors, derived from `ndb_transports._options.ClientOptions`
(and the core's `ndb_proto.options.ProtocolOptions` it extends) and, for the blocking client,
`ndb_transports._options.SyncOptions`.
{GENERATED}"""

# ruff: noqa: E501
# fmt: off

from __future__ import annotations

from collections.abc import Sequence

from ndb_proto.reconnect import Backoff
from ndb_transports._options import ClientOptions, SslOption, SyncOptions
from ndb_transports.clock import VirtualClock
{every}
    def _configure(self, debug: bool, options: ClientOptions) -> None:
        raise NotImplementedError
{blocking}'''


def _sync_only_fields() -> list[Field[Any]]:
    client = {declared.name for declared in fields(ClientOptions)}
    return [f for f in fields(SyncOptions) if f.name not in client]


SERVERS = (
    # (class, its own parameters before the options, their arguments, as `_configure` takes
    # them, and their meaning)
    (
        "NdbServerKeywords",
        'host: str = "127.0.0.1", port: int = 1987, *',
        "host, port",
        "host: str, port: int",
        "``host`` and ``port`` to listen on (``port=0`` picks a free port; `url` tells which).",
    ),
    (
        "MemoryServerKeywords",
        "*, name: str | None = None, start_time: float = 0.0",
        "name, start_time",
        "name: str | None, start_time: float",
        "``name`` makes the URL ``memory://name/`` (None: ``ndb-N``, unique); ``start_time`` is "
        "where the server's own clock starts (with ``clock`` set, the server reads that instead).",
    ),
    (
        "ServerThreadKeywords",
        'host: str = "127.0.0.1", port: int = 0, *',
        "host, port",
        "host: str, port: int",
        "``host`` and ``port`` to listen on (``port=0``, the default here, picks a free port).",
    ),
)
"""The embedded servers' constructors: each class's own parameters, then the shared options."""


def render_server_keywords() -> str:
    declared = fields(ServerOptions)
    options = ", ".join(_parameter(f) for f in declared)
    arguments = ", ".join(f"{f.name}={f.name}" for f in declared)
    docs = _docs([(f.name, f.metadata["doc"]) for f in declared], " " * 8)
    properties = "".join(
        f"    @property\n    def {f.name}(self) -> {f.type}: return self.options.{f.name}\n"
        for f in declared
    )
    classes = []
    for name, own, passed, configured, meaning in SERVERS:
        own_doc = textwrap.fill(
            meaning, width=100, initial_indent=" " * 8, subsequent_indent=" " * 8
        )
        classes.append(f'''

class {name}(ServerOptionAttributes):
    def __init__(self, {own}, {options}) -> None:
        """Configure the server. Invalid options raise ValueError or TypeError naming the option.

{own_doc}
{docs}
        """
        self._configure({passed}, ServerOptions({arguments}))

    def _configure(self, {configured}, options: ServerOptions) -> None:
        raise NotImplementedError
''')
    return f'''"""The embedded servers' constructors and option attributes, derived from
`ndb_server.options.ServerOptions`.
{GENERATED}"""

# ruff: noqa: E501
# fmt: off

from __future__ import annotations

import os

from ndb_server.options import ClockOption, ServerOptions


class ServerOptionAttributes:
    """One read-only attribute per option of `ServerOptions`."""

    options: ServerOptions

{properties}{"".join(classes)}'''


SHOWN_TYPES = {"SslOption": "bool | ssl.SSLContext | None"}
"""Type aliases spelled out in the docs."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_options_doc() -> str:
    core = {declared.name for declared in fields(ProtocolOptions)}
    rows = [f"| `debug` (positional) | `bool` | `False` | {_cell(DEBUG_DOC)} |"]
    for declared in _client_fields():
        where = "" if declared.name in core else " Used by the transports only."
        shown = SHOWN_TYPES.get(str(declared.type), str(declared.type))
        rows.append(
            f"| `{declared.name}` | `{_cell(shown)}` | `{declared.default!r}` | "
            f"{_cell(declared.metadata['doc'])}{where} |"
        )
    rows.extend(
        f"| `{declared.name}` | `{_cell(str(declared.type))}` | `{declared.default!r}` | "
        f"{_cell(declared.metadata['doc'])} Blocking client only. |"
        for declared in _sync_only_fields()
    )
    table = "\n".join(rows)
    return f"""# Client options

<!-- {GENERATED} -->

Every flavour (`ndb_transports.asyncio`, `.trio`, `.sync`) takes the same options:
`NdbClient(debug=False, *, option=value, ...)`. Each is declared once, with its type, default,
check and meaning: the core's in [`ProtocolOptions`][ndb_proto.options.ProtocolOptions], the two
only the transports use in [`ClientOptions`][ndb_transports._options.ClientOptions]. This table,
the constructors' keywords and `ClientProtocol`'s are generated from those declarations. A value
an option's check refuses raises `ValueError` (or `TypeError`) naming the option, before any I/O.

| Option | Type | Default | Meaning |
|---|---|---|---|
{table}

::: ndb_transports._options
    options:
      show_root_heading: false
      members: [ClientOptions]

::: ndb_proto.options
    options:
      show_root_heading: false
      members: [ProtocolOptions]
"""


def render_state_diagram() -> str:
    legend = "\n".join(
        f"| `{trigger.value}` | {_cell(meaning)} |"
        for trigger, meaning in states.TRIGGER_MEANINGS.items()
    )
    transitions = "\n".join(
        f"| {source.name} | `{trigger.value}` | {target.name} |"
        for (source, trigger), target in states.TRANSITIONS.items()
    )
    return f"""# The client core's states

<!-- {GENERATED} -->

`ClientProtocol` (the sans-IO core in `ndb_proto/client.py`) changes its state only through the
table `TRANSITIONS` in `ndb_proto/states.py`; any change the table does not list raises
`LocalProtocolError`. This diagram is drawn from that table.

```mermaid
{states.mermaid()}```

| Trigger | What it stands for |
|---|---|
{legend}

| From | Trigger | To |
|---|---|---|
{transitions}
"""


OUTPUTS: dict[str, tuple[Path, Callable[[], str]]] = {
    "protocol-keywords": (ROOT / "ndb_proto" / "_keywords.py", render_protocol_keywords),
    "client-keywords": (HERE / "_keywords.py", render_client_keywords),
    "options-doc": (ROOT / "docs" / "reference" / "options.md", render_options_doc),
    "state-diagram": (ROOT / "docs" / "state-diagram.md", render_state_diagram),
    "server-keywords": (ROOT / "ndb_server" / "_keywords.py", render_server_keywords),
}
"""Each derived file: where it goes and how it is rendered."""
