"""``python -m ndb_server``: run the embedded NemesisDB 0.7.4-compatible server.

Prints the ``ws://`` URL it listens on (``--port 0`` picks a free port) and runs until Ctrl-C or
SIGTERM, then closes every connection with close code 1000 and exits 0. Bad flags print the
usage and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from ndb_proto.options import Check
from ndb_server.options import ServerOptions, check_address
from ndb_server.server import NdbServer


def _declared(kind: Callable[[str], Any], check: Check, name: str) -> Callable[[str], Any]:
    """An argparse type for an option the servers declare: ``text`` as ``kind``, refused with
    the declared check's own message (so the command line and the constructors agree)."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        try:
            check(name, value)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return convert


_CHECKS: dict[str, Check] = {f.name: f.metadata["check"] for f in fields(ServerOptions)}
_port = _declared(int, lambda name, value: check_address("127.0.0.1", value), "port")
_max_payload = _declared(int, _CHECKS["max_payload"], "max_payload")
_idle_ping = _declared(float, _CHECKS["idle_ping"], "idle_ping")
_idle_timeout = _declared(float, _CHECKS["idle_timeout"], "idle_timeout")
_directory = _declared(str, _CHECKS["persist_dir"], "persist_dir")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ndb_server",
        description="An embedded server that behaves like NemesisDB 0.7.4 on the wire.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=_port, default=1987, help="port, 0 for a free one (1987)")
    p.add_argument(
        "--max-payload", type=_max_payload, default=1024, help="largest request, bytes (1024)"
    )
    p.add_argument(
        "--persist", type=_directory, metavar="DIR", help="enable KV_SAVE/SH_SAVE into DIR"
    )
    p.add_argument(
        "--idle-ping", type=_idle_ping, default=164.0, help="ping a silent client after (164 s)"
    )
    p.add_argument(
        "--idle-timeout", type=_idle_timeout, default=180.0, help="drop a silent client at (180 s)"
    )
    return p


async def serve(args: argparse.Namespace) -> None:
    server = NdbServer(
        args.host,
        args.port,
        max_payload=args.max_payload,
        persist_dir=args.persist,
        idle_ping=args.idle_ping,
        idle_timeout=args.idle_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    print(server.url, flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"ndb_server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
