"""Help texts, written from the command surface's signatures and docstrings."""

from __future__ import annotations

import textwrap

from ndb_cli.surface import CommandSpec, Kind, commands

GROUPS = {"kv_": "Key-value store", "sh_": "Sessions", "sv_": "Server"}


def overview(extra: dict[str, str] | None = None) -> str:
    """Every command with its one-line summary, grouped by prefix."""
    table = commands()
    width = max(len(name) for name in table) + 2
    lines: list[str] = []
    for prefix, title in GROUPS.items():
        lines.append(f"{title}:")
        lines += [
            f"  {name:<{width}}{spec.summary}"
            for name, spec in table.items()
            if name.startswith(prefix)
        ]
    others = [name for name in table if not name.startswith(tuple(GROUPS))]
    if others:
        lines.append("Other:")
        lines += [f"  {name:<{width}}{table[name].summary}" for name in others]
    if extra:
        lines.append("Also:")
        lines += [f"  {name:<{width}}{text}" for name, text in extra.items()]
    lines.append("")
    lines.append("help COMMAND shows a command's parameters.")
    return "\n".join(lines)


def _describe(kind: Kind) -> str:
    return {
        Kind.WORD: "text, as typed",
        Kind.INTEGER: "an integer",
        Kind.BOOLEAN: "true or false (the option alone means true)",
        Kind.TOKEN: "a session token ($tkn: the last one created)",
        Kind.CHOICE: "one of the choices",
        Kind.OBJECT: "a JSON object",
        Kind.JSON: "a JSON value",
    }[kind]


def command_help(spec: CommandSpec) -> str:
    """Usage, docstring and a line per parameter."""
    lines = [f"usage: {spec.usage()}", "", spec.doc, ""]
    if spec.params:
        lines.append("parameters:")
    for param in spec.params:
        how = "given by position" if param.positional else f"--{param.name}"
        what = _describe(param.kind)
        if param.many:
            what = f"zero or more words, each {what}" if not param.required else f"words: {what}"
        if not param.required:
            what += f"; default {param.default!r}"
        lines.append(f"  {param.name} ({how}): {what}")
    return "\n".join(
        line
        if line.startswith(("usage:", spec.doc))
        else textwrap.fill(line, 96, subsequent_indent="    ")
        for line in lines
    )
