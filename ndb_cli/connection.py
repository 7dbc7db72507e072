"""The connection options every mode shares, and opening a client with them."""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from ndb_cli.words import UsageError
from ndb_proto.options import positive
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
    context: ssl.SSLContext | None = field(default=None, compare=False)
    """The context built from the files when the arguments were read."""

    def ssl_option(self) -> bool | ssl.SSLContext | None:
        """What the client's ``ssl`` option gets: a context when files are given, True to
        require ``wss://``, None to follow the URL's scheme. Verification always stays on."""
        if self.context is not None:
            return self.context
        if self.cafile or self.certfile:
            return tls_context(self.cafile, self.certfile, self.keyfile)
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


def _readable(option: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None


def tls_context(cafile: str | None, certfile: str | None, keyfile: str | None) -> ssl.SSLContext:
    """A verifying client context trusting ``cafile`` (else the system's CAs) and presenting
    ``certfile``; `UsageError` naming the option whose file cannot be used."""
    if keyfile and not certfile:
        raise UsageError("--keyfile: needs --certfile (the certificate the key belongs to)")
    for option, path in (("--cafile", cafile), ("--certfile", certfile), ("--keyfile", keyfile)):
        if path:
            _readable(option, path)
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (ssl.SSLError, ValueError) as exc:
        raise UsageError(
            f"--cafile: no CA certificate could be read from {cafile}: {exc}"
        ) from None
    if certfile:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, ValueError) as exc:
            options = "--certfile/--keyfile" if keyfile else "--certfile"
            raise UsageError(f"{options}: not a usable certificate and key: {exc}") from None
    return context


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    try:
        positive(text, value)  # the clients' own rule for every seconds option
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
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
    """The options; `UsageError` naming the option when the TLS files cannot be used (checked
    here, before any connection, rather than reported as a connection failure)."""
    context = None
    if args.cafile or args.certfile or args.keyfile:
        context = tls_context(args.cafile, args.certfile, args.keyfile)
    return ConnectionOptions(
        url=args.url,
        timeout=args.timeout,
        connect_timeout=args.connect_timeout,
        tls=args.tls,
        cafile=args.cafile,
        certfile=args.certfile,
        keyfile=args.keyfile,
        max_message_size=args.max_message_size,
        context=context,
    )
