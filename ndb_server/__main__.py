"""``python -m ndb_server``: run the embedded NemesisDB 0.7.4-compatible server.

Prints the ``ws://`` URL it listens on (``--port 0`` picks a free port) and runs until Ctrl-C or
SIGTERM, then closes every connection with close code 1000 and exits 0. Bad flags print the
usage and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from ndb_server.server import NdbServer


def _number(kind: type[float], text: str) -> float:
    """``text`` as an int or a float, or an error argparse shows with the option's name."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None


def _max_payload(text: str) -> int:
    value = int(_number(int, text))
    if not 64 <= value <= 8192:
        raise argparse.ArgumentTypeError("must be in 64..8192 (NemesisDB's maxPayload range)")
    return value


def _port(text: str) -> int:
    value = int(_number(int, text))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be in 0..65535")
    return value


def _directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return text


def _seconds(text: str) -> float:
    value = _number(float, text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


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
        "--idle-ping", type=_seconds, default=164.0, help="ping a silent client after (164 s)"
    )
    p.add_argument(
        "--idle-timeout", type=_seconds, default=180.0, help="drop a silent client at (180 s)"
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
