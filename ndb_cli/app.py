"""``ndb``: the command line entry point.

``ndb [options] COMMAND [ARGS...]`` runs one command and prints its result; with no command it
reads commands from standard input, or opens the interactive shell when standard input is a
terminal. ``ndb help [COMMAND]``, ``ndb dump FILE`` and ``ndb restore FILE`` are the other
verbs. Exit statuses: `ndb_cli.runner.Exit`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from ndb_cli import connection
from ndb_cli.connection import CannotConnect, ConnectionOptions
from ndb_cli.help import command_help, overview
from ndb_cli.lines import LineReader
from ndb_cli.output import Printer
from ndb_cli.runner import Exit, classify, execute, find_command, prepare
from ndb_cli.script import ScriptRunner
from ndb_cli.words import Text, UsageError
from ndb_proto import __version__
from ndb_transports.asyncio import NdbClient

VERBS = {
    "help": "help [COMMAND]: the commands, or one command's parameters",
    "dump": "dump FILE: write the KV store to FILE as JSON lines ('-': stdout)",
    "restore": "restore FILE: store the keys of a dump FILE ('-': stdin)",
    "bench": "bench [OPTIONS]: load generator; ndb bench --help",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ndb",
        description="NemesisDB from the command line: run one command, a script from stdin, "
        "or an interactive shell.",
        epilog="Commands: ndb help. Exit status: 0 success, 1 the server refused, "
        "2 usage or invalid argument, 3 cannot connect or connection lost.",
    )
    p.add_argument("--version", action="version", version=f"ndb {__version__}")
    connection.add_arguments(p)
    out = p.add_argument_group("output")
    out.add_argument("--raw", action="store_true", help="print the reply as the server sent it")
    fmt = out.add_mutually_exclusive_group()
    fmt.add_argument("--pretty", action="store_true", default=None, help="indent JSON")
    fmt.add_argument("--compact", dest="pretty", action="store_false", help="one line per result")
    col = out.add_mutually_exclusive_group()
    col.add_argument("--color", "--colour", dest="color", action="store_true", default=None)
    col.add_argument("--no-color", "--no-colour", dest="color", action="store_false")
    p.add_argument("--debug", action="store_true", help="log the client's activity to stderr")
    p.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded server in this process and use it (ignores --url)",
    )
    p.add_argument("command", nargs="?", help="a command (ndb help lists them)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    return p


def _error(message: str) -> None:
    sys.stderr.write(f"ndb: {message}\n")
    sys.stderr.flush()


@contextlib.asynccontextmanager
async def _client(options: ConnectionOptions, auto_reconnect: bool) -> AsyncIterator[NdbClient]:
    client = await options.connect(auto_reconnect=auto_reconnect)
    try:
        yield client
    finally:
        await client.close_and_wait()


@contextlib.asynccontextmanager
async def _connected(
    args: argparse.Namespace, options: ConnectionOptions, *, auto_reconnect: bool = False
) -> AsyncIterator[tuple[NdbClient, str]]:
    """An open client and its URL; with ``--embedded``, on a server started here for the run."""
    if not args.embedded:
        async with _client(options, auto_reconnect) as client:
            yield client, options.url
        return
    from ndb_server.server import NdbServer  # only --embedded needs the server

    server = NdbServer("127.0.0.1", 0, max_payload=options.max_message_size)
    await server.start()
    try:
        async with _client(dataclasses.replace(options, url=server.url), auto_reconnect) as client:
            yield client, server.url
    finally:
        await server.stop()


async def _one_shot(args: argparse.Namespace, options: ConnectionOptions) -> Exit:
    call = prepare(args.command, [Text(word, verbatim=True) for word in args.args])
    printer = Printer(sys.stdout, pretty=args.pretty, colour=args.color)
    async with _connected(args, options) as (client, _):
        result = await execute(client, call, raw=args.raw)
    if args.raw or not call.spec.returns_nothing:
        printer.show(result)
    return Exit.OK


async def _script(args: argparse.Namespace, options: ConnectionOptions) -> Exit:
    printer = Printer(sys.stdout, pretty=args.pretty, colour=args.color)
    async with _connected(args, options) as (client, _):
        reader = LineReader(sys.stdin.fileno())
        return await ScriptRunner(client, printer, sys.stderr, args.raw).run(reader)


async def _shell(args: argparse.Namespace, options: ConnectionOptions) -> Exit:
    try:
        from ndb_cli.shell import Shell
    except ImportError as exc:
        raise UsageError(
            f"the interactive shell needs prompt_toolkit ({exc}); install it with "
            "pip install 'ndb-nemesisdb[cli]', or pipe commands into ndb"
        ) from None
    async with _connected(args, options, auto_reconnect=True) as (client, url):
        return await Shell(client, url, raw=args.raw).run()


async def _transfer(args: argparse.Namespace, options: ConnectionOptions) -> Exit:
    from ndb_cli.transfer import dump, restore

    if len(args.args) != 1:
        raise UsageError(f"usage: ndb {args.command} FILE ('-' for standard in/output)")
    run = dump if args.command == "dump" else restore
    async with _connected(args, options) as (client, _):
        return await run(client, args.args[0], sys.stderr)


def _bench(args: argparse.Namespace, options: ConnectionOptions) -> Exit:
    from ndb_cli import bench

    settings = bench.parse(args.args)
    if settings.flavour == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            raise UsageError(
                "--flavour trio needs trio: pip install 'ndb-nemesisdb[trio]'"
            ) from None
    if not args.embedded:
        return Exit(bench.run(settings, options))
    from ndb_server.thread import ServerThread

    with ServerThread(max_payload=options.max_message_size) as server:
        return Exit(bench.run(settings, dataclasses.replace(options, url=server.url)))


def _verb_help(verb: str) -> str:
    """The usage of one of `VERBS` (bench has a parser of its own)."""
    if verb == "bench":
        from ndb_cli import bench

        return bench.parser().format_help().rstrip("\n")
    usage, _, what = VERBS[verb].partition(": ")
    return f"usage: ndb {usage}\n\n{what[:1].upper()}{what[1:]}."


def _help(args: argparse.Namespace) -> Exit:
    if not args.args:
        print(overview(VERBS))
    elif len(args.args) == 1 and args.args[0] in VERBS:
        print(_verb_help(args.args[0]))
    elif len(args.args) == 1:
        print(command_help(find_command(args.args[0])))
    else:
        raise UsageError("usage: ndb help [COMMAND]")
    return Exit.OK


def _mode(args: argparse.Namespace) -> Callable[..., Coroutine[Any, Any, Exit]]:
    if args.command is None:
        return _shell if sys.stdin.isatty() else _script
    if args.command in ("dump", "restore"):
        return _transfer
    find_command(args.command)
    return _one_shot


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG)
    else:
        # The shell shows connection changes itself; keep the client's warnings off stderr.
        logging.getLogger("ndb").addHandler(logging.NullHandler())
    try:
        options = connection.from_arguments(args)
        if args.command not in (None, "help", "bench") and {"--help", "-h"} & set(args.args):
            args.command, args.args = "help", [args.command]
        if args.command == "help":
            return _help(args)
        if args.command == "bench":
            return _bench(args, options)
        mode = _mode(args)
        return asyncio.run(mode(args, options))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (ndb ... | head): not an error of ours. Point stdout at devnull
        # so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.OK
    except CannotConnect as exc:
        _error(str(exc))
        return Exit.CONNECTION
    except Exception as exc:
        code, message = classify(exc)
        _error(message)
        return code
