"""Turning words into a call on the client, running it, and naming what went wrong.

Every command goes through `prepare` (parse and check the arguments: nothing is sent when this
fails) and `execute` (one call on an `ndb_transports.asyncio.NdbClient`). Failures map onto the
CLI's exit statuses by `classify`.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ndb_cli.arguments import bind
from ndb_cli.surface import CommandSpec, commands
from ndb_cli.words import UsageError, Word
from ndb_proto.commands import Body, Request
from ndb_proto.errors import (
    ConnectionLostError,
    NdbTimeoutError,
    ProtocolError,
    ResponseError,
)
from ndb_transports._options import DEFAULT
from ndb_transports.asyncio import NdbClient


class Exit(enum.IntEnum):
    """The process exit statuses."""

    OK = 0
    REFUSED = 1  # the server answered with an error status
    USAGE = 2  # bad usage or an invalid argument; nothing was sent
    CONNECTION = 3  # cannot connect, connection lost, no answer in time


@dataclass(frozen=True)
class Call:
    """A checked command, ready to run."""

    spec: CommandSpec
    kwargs: dict[str, Any]


def find_command(name: str) -> CommandSpec:
    """The command called ``name``; UsageError (with near matches) for an unknown one."""
    table = commands()
    spec = table.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(table), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; try: ndb help"
        raise UsageError(f"unknown command {name!r}{hint}")
    return spec


def prepare(name: str, words: Sequence[Word]) -> Call:
    """Parse and check a command: raises UsageError, or the surface's own ValueError/TypeError
    naming the parameter, before anything is sent."""
    spec = find_command(name)
    kwargs = bind(spec, words)
    spec.function(**kwargs)  # the surface's checks, including the encoded size
    return Call(spec, kwargs)


async def execute(client: NdbClient, call: Call, *, raw: bool = False) -> Any:
    """Run ``call``; with ``raw``, return the reply as it came (``{"<NAME>_RSP": body}``)."""
    if not raw:
        return await getattr(client, call.spec.name)(**call.kwargs)
    request: Request[Any] = call.spec.function(**call.kwargs)
    read = request.result

    def whole_reply(body: Body) -> Any:
        read(body)  # keep the core's checks that the reply answers this request
        return {request.command.rsp: body}

    # The generated methods all go through this hook; here it runs the same request with a
    # reader that keeps the whole body.
    return await client._execute(Request(request.command, request.payload, whole_reply), DEFAULT)


def classify(error: BaseException) -> tuple[Exit, str]:
    """The exit status and the message for a failure."""
    if isinstance(error, ResponseError):
        return Exit.REFUSED, str(error)  # COMMAND failed: NAME (number)[: message]
    if isinstance(error, (UsageError, ValueError, TypeError)):
        return Exit.USAGE, str(error)
    if isinstance(error, NdbTimeoutError):
        return Exit.CONNECTION, f"no reply in time: {error}"
    if isinstance(error, (ConnectionLostError, ProtocolError, OSError)):
        return Exit.CONNECTION, f"connection lost: {error}"
    raise error
