"""Client options shared by every flavour, and how they become a core and a TLS context."""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from ndb_proto.client import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_INCOMING_MESSAGE_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    ClientProtocol,
)
from ndb_proto.pipeline import REPLY_BUDGET
from ndb_proto.reconnect import Backoff
from ndb_proto.uri import Endpoint


class Default(Enum):
    """Marks "use the client's default" for a per-call ``timeout``."""

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = Default.DEFAULT

SslOption = bool | _ssl.SSLContext | None


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Everything a client can be configured with (the constructor's keyword arguments)."""

    timeout: float | None = 10.0
    connect_timeout: float = 5.0
    auto_reconnect: bool = True
    ssl: SslOption = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_incoming_message_size: int | None = DEFAULT_MAX_INCOMING_MESSAGE_SIZE
    ping_interval: float | None = None
    ping_timeout: float = 20.0
    reply_grace: float = 10.0
    reply_budget: int = REPLY_BUDGET
    close_timeout: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)
    subprotocols: Sequence[str] = ()
    extra_headers: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 or None, got {self.timeout}")
        if not (self.ssl is None or isinstance(self.ssl, (bool, _ssl.SSLContext))):
            raise TypeError(f"ssl must be None, a bool or an ssl.SSLContext, got {self.ssl!r}")

    def protocol(self, uris: Sequence[str]) -> ClientProtocol:
        """A new core for ``uris``; raises ValueError for a bad URI or option, before any I/O."""
        protocol = ClientProtocol(
            uris,
            max_in_flight=self.max_in_flight,
            max_message_size=self.max_message_size,
            max_incoming_message_size=self.max_incoming_message_size,
            auto_reconnect=self.auto_reconnect,
            connect_timeout=self.connect_timeout,
            reply_grace=self.reply_grace,
            reply_budget=self.reply_budget,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            backoff=self.backoff,
            subprotocols=self.subprotocols,
            extra_headers=self.extra_headers,
        )
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


@lru_cache(maxsize=1)
def _default_context() -> _ssl.SSLContext:
    # Verifies certificates against the system's CAs and checks host names.
    return _ssl.create_default_context()
