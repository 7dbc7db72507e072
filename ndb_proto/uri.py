"""Parsing of ``ws://`` and ``wss://`` URIs into what a transport needs to connect.

``memory://name/`` names an in-process test server (`ndb_server.MemoryServer`) instead of a
socket: the same WebSocket bytes, carried by a stream in memory. It has no port and no TLS."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"ws": 80, "wss": 443}
MEMORY_SCHEME = "memory"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect: ``host``/``port`` for the socket, ``secure`` for TLS, and the
    ``host_header``/``target`` of the WebSocket upgrade request."""

    uri: str
    secure: bool
    host: str
    port: int
    target: str
    in_memory: bool = False
    """True for ``memory://``: ``host`` names an in-process server and ``port`` is 0."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.in_memory or self.port == DEFAULT_PORTS["wss" if self.secure else "ws"]:
            return host
        return f"{host}:{self.port}"


def parse_uri(uri: str) -> Endpoint:
    """Parse ``ws[s]://host[:port][/path][?query]`` or ``memory://name[/path]``; raises
    ValueError naming ``uri``."""
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, got {type(uri).__name__}")
    if not uri:
        raise ValueError("uri must not be empty")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    in_memory = scheme == MEMORY_SCHEME
    if scheme not in DEFAULT_PORTS and not in_memory:
        raise ValueError(f"uri must start with ws://, wss:// or memory://, got {uri!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"uri has an invalid port: {uri!r}") from exc
    if in_memory and port is not None:
        raise ValueError(f"a memory:// uri has no port: {uri!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"uri has no host: {uri!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("uri must not carry credentials: NemesisDB has no authentication")
    if parts.fragment:
        raise ValueError(f"uri must not have a fragment: {uri!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not (target.isascii() and (target + host).isprintable()) or " " in target + host:
        # The upgrade request could not carry it (h11 refuses such a target or Host header).
        raise ValueError(f"uri must be percent-encoded, without spaces or controls: {uri!r}")
    endpoint = Endpoint(
        uri=uri,
        secure=scheme == "wss",
        host=host,
        port=port if port is not None else DEFAULT_PORTS.get(scheme, 0),
        target=target,
        in_memory=in_memory,
    )
    try:
        endpoint.host_header.encode("idna")  # as wsproto writes the Host header
    except UnicodeError as exc:
        raise ValueError(f"uri has a host that is not a valid domain name: {uri!r}") from exc
    return endpoint
