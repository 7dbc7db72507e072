"""The connection options every mode shares, and opening a client with them."""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass
from typing import Any

from ndb_transports.asyncio import NdbClient

DEFAULT_URL = "ws://127.0.0.1:1987/"


class CannotConnect(ConnectionError):
    """No server answered at the URL."""


@dataclass(frozen=True)
class ConnectionOptions:
    """Where the server is and how to talk to it (the global command line options)."""

    url: str = DEFAULT_URL
    timeout: float | None = 10.0
    connect_timeout: float = 5.0
    tls: bool = False
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    max_message_size: int = 1024

    def ssl_option(self) -> bool | ssl.SSLContext | None:
        """What the client's ``ssl`` option gets: a context when files are given, True to
        require ``wss://``, None to follow the URL's scheme. Verification always stays on."""
        if self.cafile or self.certfile:
            context = ssl.create_default_context(cafile=self.cafile)
            if self.certfile:
                context.load_cert_chain(self.certfile, self.keyfile)
            return context
        return True if self.tls else None

    def client_options(self, *, auto_reconnect: bool, **more: Any) -> dict[str, Any]:
        """The keyword arguments of any flavour's ``NdbClient``."""
        return {
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "ssl": self.ssl_option(),
            "auto_reconnect": auto_reconnect,
            "max_message_size": self.max_message_size,
            **more,
        }

    def require(self, opened: bool) -> None:
        """`CannotConnect` unless a client's ``open`` returned True."""
        if not opened:
            raise CannotConnect(f"cannot connect to {self.url}")

    async def connect(self, *, auto_reconnect: bool, **more: Any) -> NdbClient:
        """An open asyncio client; `CannotConnect` when the server cannot be reached,
        ValueError for a malformed URL."""
        client = NdbClient(**self.client_options(auto_reconnect=auto_reconnect, **more))
        try:
            self.require(await client.open(self.url))
        except ValueError as exc:
            raise ValueError(f"--url: {exc}") from None
        return client


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _timeout(text: str) -> float | None:
    return None if text.lower() in ("none", "0") else _positive(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection options, as the clients' constructor options."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=os.environ.get("NDB_URL") or DEFAULT_URL,
        help=f"server URL, ws:// or wss:// (default: $NDB_URL, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--timeout",
        type=_timeout,
        default=10.0,
        metavar="SECONDS",
        help="per command; 0 or none for no limit (default 10)",
    )
    group.add_argument(
        "--connect-timeout", type=_positive, default=5.0, metavar="SECONDS", help="(default 5)"
    )
    group.add_argument("--tls", action="store_true", help="require a wss:// URL")
    group.add_argument("--cafile", help="trust the CA certificates in this PEM file")
    group.add_argument("--certfile", help="client certificate (PEM), for mutual TLS")
    group.add_argument("--keyfile", help="the client certificate's private key (PEM)")
    group.add_argument(
        "--max-message-size",
        type=int,
        default=1024,
        metavar="BYTES",
        help="the server's maxPayload: larger requests are refused (default 1024)",
    )


def from_arguments(args: argparse.Namespace) -> ConnectionOptions:
    return ConnectionOptions(
        url=args.url,
        timeout=args.timeout,
        connect_timeout=args.connect_timeout,
        tls=args.tls,
        cafile=args.cafile,
        certfile=args.certfile,
        keyfile=args.keyfile,
        max_message_size=args.max_message_size,
    )
