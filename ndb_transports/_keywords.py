"""The flavours' constructors, derived from `ndb_transports._options.ClientOptions`
(and the core's `ndb_proto.options.ProtocolOptions` it extends) and, for the blocking client,
`ndb_transports._options.SyncOptions`.
Generated: do not edit. Change the declarations and run ``python -m ndb_transports._generate``."""

# ruff: noqa: E501
# fmt: off

from __future__ import annotations

from collections.abc import Sequence

from ndb_proto.reconnect import Backoff
from ndb_transports._options import ClientOptions, SslOption, SyncOptions
from ndb_transports.clock import VirtualClock


class ClientKeywords:
    """``NdbClient(debug=False, *, option=value, ...)``, the same in every flavour."""

    def __init__(self, debug: bool = False, *, timeout: float | None = 10.0, ssl: SslOption = None, connect_timeout: float = 5.0, auto_reconnect: bool = True, max_in_flight: int = 64, max_message_size: int = 1024, max_incoming_message_size: int | None = 67108864, ping_interval: float | None = None, ping_timeout: float = 20.0, reply_grace: float = 10.0, reply_budget: int = 98304, read_reply_limit: int | None = None, close_timeout: float = 5.0, backoff: Backoff | None = None, subprotocols: Sequence[str] = (), extra_headers: Sequence[tuple[str, str]] = ()) -> None:
        """Configure the client; nothing connects until ``open``. Invalid options raise
        ValueError or TypeError naming the option.

        ``debug``: Log to stderr at DEBUG level through `logging` (logger ``ndb``), as NemesisDB's
        client does. Positional, as in NemesisDB's client.
        ``timeout``: Default seconds per command (None: no limit); a call's own timeout= overrides
        it.
        ``ssl``: None (TLS for wss:// URIs, verified), True (require wss://, verified) or an
        ssl.SSLContext; TLS verification is never turned off silently (ssl=False with a wss:// URI
        is refused).
        ``connect_timeout``: Seconds for one connection attempt: TCP, TLS and the WebSocket
        handshake.
        ``auto_reconnect``: Reconnect with backoff after a lost connection; requests not yet written
        wait for it (within their timeout). Without it they fail at once.
        ``max_in_flight``: Requests written and unanswered at once on the connection.
        ``max_message_size``: The server's maxPayload (1024 as shipped, at most 8192): a larger
        request is refused before it is sent, since the server would drop the connection.
        ``max_incoming_message_size``: The largest reply accepted, in bytes (None: no limit).
        ``ping_interval``: Seconds between keepalive pings (None: no pings).
        ``ping_timeout``: Seconds a keepalive ping may go unanswered before the connection is lost.
        ``reply_grace``: Seconds past its deadline an unanswered request may hold up the connection
        before the connection is given up (later replies could not be matched).
        ``reply_budget``: Bytes of reply size bounds in flight at once (besides max_in_flight):
        NemesisDB drops replies once 128 KiB of its output is unread.
        ``read_reply_limit``: Bytes the reply of any one read (kv_get, sh_get, kv_keys, sh_keys,
        kv_find) stays under, if you know it does. None: reads are never pipelined behind one
        another, which is safe whatever the data. Set: reads pipeline like writes, each counted at
        this size; a larger reply ends the connection, failing the requests written behind it
        (outcome unknown), as the server may have dropped their replies.
        ``close_timeout``: Seconds close() waits for the server to answer the close frame.
        ``backoff``: Delays between reconnect attempts (None: Backoff(), 0.1 s doubling to 30 s).
        ``subprotocols``: WebSocket subprotocols offered in the handshake (NemesisDB echoes the
        first and ignores it).
        ``extra_headers``: Extra HTTP headers (name, value) sent with the handshake request, e.g.
        for a proxy's authentication.
        """
        self._configure(debug, ClientOptions(timeout=timeout, ssl=ssl, connect_timeout=connect_timeout, auto_reconnect=auto_reconnect, max_in_flight=max_in_flight, max_message_size=max_message_size, max_incoming_message_size=max_incoming_message_size, ping_interval=ping_interval, ping_timeout=ping_timeout, reply_grace=reply_grace, reply_budget=reply_budget, read_reply_limit=read_reply_limit, close_timeout=close_timeout, backoff=backoff, subprotocols=subprotocols, extra_headers=extra_headers))

    def _configure(self, debug: bool, options: ClientOptions) -> None:
        raise NotImplementedError


class SyncClientKeywords(ClientKeywords):
    """The blocking client's constructor: every flavour's options, and its ``clock``."""

    def __init__(self, debug: bool = False, *, timeout: float | None = 10.0, ssl: SslOption = None, connect_timeout: float = 5.0, auto_reconnect: bool = True, max_in_flight: int = 64, max_message_size: int = 1024, max_incoming_message_size: int | None = 67108864, ping_interval: float | None = None, ping_timeout: float = 20.0, reply_grace: float = 10.0, reply_budget: int = 98304, read_reply_limit: int | None = None, close_timeout: float = 5.0, backoff: Backoff | None = None, subprotocols: Sequence[str] = (), extra_headers: Sequence[tuple[str, str]] = (), clock: VirtualClock | None = None) -> None:
        """Configure the client; nothing connects until ``open``. Invalid options raise
        ValueError or TypeError naming the option.

        ``debug``: Log to stderr at DEBUG level through `logging` (logger ``ndb``), as NemesisDB's
        client does. Positional, as in NemesisDB's client.
        ``timeout``: Default seconds per command (None: no limit); a call's own timeout= overrides
        it.
        ``ssl``: None (TLS for wss:// URIs, verified), True (require wss://, verified) or an
        ssl.SSLContext; TLS verification is never turned off silently (ssl=False with a wss:// URI
        is refused).
        ``connect_timeout``: Seconds for one connection attempt: TCP, TLS and the WebSocket
        handshake.
        ``auto_reconnect``: Reconnect with backoff after a lost connection; requests not yet written
        wait for it (within their timeout). Without it they fail at once.
        ``max_in_flight``: Requests written and unanswered at once on the connection.
        ``max_message_size``: The server's maxPayload (1024 as shipped, at most 8192): a larger
        request is refused before it is sent, since the server would drop the connection.
        ``max_incoming_message_size``: The largest reply accepted, in bytes (None: no limit).
        ``ping_interval``: Seconds between keepalive pings (None: no pings).
        ``ping_timeout``: Seconds a keepalive ping may go unanswered before the connection is lost.
        ``reply_grace``: Seconds past its deadline an unanswered request may hold up the connection
        before the connection is given up (later replies could not be matched).
        ``reply_budget``: Bytes of reply size bounds in flight at once (besides max_in_flight):
        NemesisDB drops replies once 128 KiB of its output is unread.
        ``read_reply_limit``: Bytes the reply of any one read (kv_get, sh_get, kv_keys, sh_keys,
        kv_find) stays under, if you know it does. None: reads are never pipelined behind one
        another, which is safe whatever the data. Set: reads pipeline like writes, each counted at
        this size; a larger reply ends the connection, failing the requests written behind it
        (outcome unknown), as the server may have dropped their replies.
        ``close_timeout``: Seconds close() waits for the server to answer the close frame.
        ``backoff``: Delays between reconnect attempts (None: Backoff(), 0.1 s doubling to 30 s).
        ``subprotocols``: WebSocket subprotocols offered in the handshake (NemesisDB echoes the
        first and ignores it).
        ``extra_headers``: Extra HTTP headers (name, value) sent with the handshake request, e.g.
        for a proxy's authentication.
        ``clock``: None (real time), or a VirtualClock for tests: timeouts, reconnect backoff and
        keepalive then follow it, with no real waiting (see docs/testing.md).
        """
        self._configure(debug, SyncOptions(timeout=timeout, ssl=ssl, connect_timeout=connect_timeout, auto_reconnect=auto_reconnect, max_in_flight=max_in_flight, max_message_size=max_message_size, max_incoming_message_size=max_incoming_message_size, ping_interval=ping_interval, ping_timeout=ping_timeout, reply_grace=reply_grace, reply_budget=reply_budget, read_reply_limit=read_reply_limit, close_timeout=close_timeout, backoff=backoff, subprotocols=subprotocols, extra_headers=extra_headers, clock=clock))
