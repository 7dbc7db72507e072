"""Client options shared by every flavour, and how they become a core and a TLS context."""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from ndb_proto.client import ClientProtocol
from ndb_proto.options import ProtocolOptions, about, positive_or_none
from ndb_proto.uri import Endpoint
from ndb_transports.clock import VirtualClock


class Default(Enum):
    """Marks "use the client's default" for a per-call ``timeout``."""

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = Default.DEFAULT

SslOption = bool | _ssl.SSLContext | None


def _check_ssl(name: str, value: object) -> None:
    if not (value is None or isinstance(value, (bool, _ssl.SSLContext))):
        raise TypeError(f"{name} must be None, a bool or an ssl.SSLContext, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions(ProtocolOptions):
    """Every option of a client (its constructor's keywords): the core's, declared in
    `ProtocolOptions`, and the two only the transports use, declared here."""

    timeout: float | None = field(
        default=10.0,
        metadata=about(
            "Default seconds per command (None: no limit); a call's own timeout= overrides it.",
            positive_or_none,
        ),
    )
    ssl: SslOption = field(
        default=None,
        metadata=about(
            "None (TLS for wss:// URIs, verified), True (require wss://, verified) or an "
            "ssl.SSLContext; TLS verification is never turned off silently (ssl=False with a "
            "wss:// URI is refused).",
            _check_ssl,
        ),
    )

    def protocol(self, uris: Sequence[str]) -> ClientProtocol:
        """A new core for ``uris``; raises ValueError for a bad URI or option, before any I/O."""
        protocol = ClientProtocol.from_options(uris, self)
        for endpoint in protocol.endpoints:
            self.ssl_context(endpoint)  # refuse a contradictory ssl option now
        return protocol

    def ssl_context(self, endpoint: Endpoint) -> _ssl.SSLContext | None:
        """The TLS context for ``endpoint``. TLS verification is never silently turned off:
        ``wss://`` always verifies the certificate and host name unless the caller passes its
        own SSLContext configured otherwise."""
        if not endpoint.secure:
            if self.ssl is True or isinstance(self.ssl, _ssl.SSLContext):
                raise ValueError(f"ssl is set but {endpoint.uri} is not a wss:// URI")
            return None
        if self.ssl is False:
            raise ValueError(
                f"{endpoint.uri} needs TLS; ssl=False cannot turn it off (pass an "
                f"ssl.SSLContext to change verification)"
            )
        if isinstance(self.ssl, _ssl.SSLContext):
            return self.ssl
        return _default_context()


def _virtual_clock_or_none(name: str, value: object) -> None:
    if value is not None and not isinstance(value, VirtualClock):
        raise TypeError(f"{name} must be None or a VirtualClock, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncOptions(ClientOptions):
    """The blocking client's options: every flavour's, and the clock its waits follow (the
    asyncio and trio clients follow their event loop's clock)."""

    clock: VirtualClock | None = field(
        default=None,
        metadata=about(
            "None (real time), or a VirtualClock for tests: timeouts, reconnect backoff and "
            "keepalive then follow it, with no real waiting (see docs/testing.md).",
            _virtual_clock_or_none,
        ),
    )


@lru_cache(maxsize=1)
def _default_context() -> _ssl.SSLContext:
    # Verifies certificates against the system's CAs and checks host names.
    return _ssl.create_default_context()
