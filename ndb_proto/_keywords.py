"""`ClientProtocol`'s keyword arguments and option attributes, derived from
`ndb_proto.options.ProtocolOptions`.
Generated: do not edit. Change the declarations and run ``python -m ndb_transports._generate``."""

# ruff: noqa: E501
# fmt: off

from __future__ import annotations

import random as _random
from collections.abc import Callable, Sequence

from ndb_proto.options import ProtocolOptions
from ndb_proto.reconnect import Backoff


class ProtocolKeywords:
    """One keyword argument, and one read-only attribute, per option of `ProtocolOptions`."""

    options: ProtocolOptions

    def __init__(self, uris: str | Sequence[str], *, connect_timeout: float = 5.0, auto_reconnect: bool = True, max_in_flight: int = 64, max_message_size: int = 1024, max_incoming_message_size: int | None = 67108864, ping_interval: float | None = None, ping_timeout: float = 20.0, reply_grace: float = 10.0, reply_budget: int = 98304, read_reply_limit: int | None = None, close_timeout: float = 5.0, backoff: Backoff | None = None, subprotocols: Sequence[str] = (), extra_headers: Sequence[tuple[str, str]] = (), random: Callable[[], float] = _random.random) -> None:
        """A client core for ``uris``: one server's ``ws://`` or ``wss://`` URI, or a pool of
        them tried in turn. Each keyword is the option of that name, whose meaning, default and
        check are declared in `ndb_proto.options.ProtocolOptions`; ``random`` draws the
        backoff's jitter. Raises ValueError for a bad URI or option, before any I/O."""
        self._configure(uris, ProtocolOptions(connect_timeout=connect_timeout, auto_reconnect=auto_reconnect, max_in_flight=max_in_flight, max_message_size=max_message_size, max_incoming_message_size=max_incoming_message_size, ping_interval=ping_interval, ping_timeout=ping_timeout, reply_grace=reply_grace, reply_budget=reply_budget, read_reply_limit=read_reply_limit, close_timeout=close_timeout, backoff=backoff, subprotocols=subprotocols, extra_headers=extra_headers), random)

    def _configure(
        self, uris: str | Sequence[str], options: ProtocolOptions, random: Callable[[], float]
    ) -> None:
        raise NotImplementedError

    @property
    def connect_timeout(self) -> float: return self.options.connect_timeout
    @property
    def auto_reconnect(self) -> bool: return self.options.auto_reconnect
    @property
    def max_in_flight(self) -> int: return self.options.max_in_flight
    @property
    def max_message_size(self) -> int: return self.options.max_message_size
    @property
    def max_incoming_message_size(self) -> int | None: return self.options.max_incoming_message_size
    @property
    def ping_interval(self) -> float | None: return self.options.ping_interval
    @property
    def ping_timeout(self) -> float: return self.options.ping_timeout
    @property
    def reply_grace(self) -> float: return self.options.reply_grace
    @property
    def reply_budget(self) -> int: return self.options.reply_budget
    @property
    def read_reply_limit(self) -> int | None: return self.options.read_reply_limit
    @property
    def close_timeout(self) -> float: return self.options.close_timeout
    @property
    def backoff(self) -> Backoff | None: return self.options.backoff
    @property
    def subprotocols(self) -> Sequence[str]: return self.options.subprotocols
    @property
    def extra_headers(self) -> Sequence[tuple[str, str]]: return self.options.extra_headers
