"""The client state machine: everything a NemesisDB client does, except I/O.

A transport owns the socket and the clock. It asks `ClientProtocol.next_connect` where and when
to connect, reports the outcome (`connection_made` / `connection_failed`), feeds every received
chunk to `receive_data`, writes whatever `data_to_send` returns, and calls `handle_timeout` when
`next_deadline` passes. Results come back as events (`ndb_proto.events`). Requests survive
reconnects until they are written; a written request whose connection dies fails with its outcome
unknown, and is never resent.

Its parts, each with its own deadline: the lifecycle is the table of `ndb_proto.states` (every
change of state goes through it; ``docs/state-diagram.md`` draws it), the upgrade is a
`ClientHandshake` (``connect_timeout``), the requests are a `Pipeline` (their deadlines), pings
are a `Keepalive` (``ping_timeout``), the choice of server and the backoff a `Reconnector`; the
close handshake's deadline (``close_timeout``) is the core's own.
"""

from __future__ import annotations

import random as _random
import re
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from wsproto.connection import Connection, ConnectionType

from ndb_proto._keywords import ProtocolKeywords
from ndb_proto.channel import (
    CLOSE_INVALID_DATA,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL_ERROR,
    BinaryReceived,
    ChannelFailed,
    MessageChannel,
    PeerClosed,
    PongReceived,
    ReceivedData,
)
from ndb_proto.codec import decode
from ndb_proto.commands import Request
from ndb_proto.errors import (
    ClientClosedError,
    ConnectionLostError,
    DecodeError,
    NdbError,
    ReadReplyLimitError,
    RemoteProtocolError,
    RequestTooLargeError,
)
from ndb_proto.events import (
    Closed,
    Connected,
    ConnectionLost,
    Event,
    UndecodableData,
)
from ndb_proto.handshake import ClientHandshake, HandshakeFailed
from ndb_proto.keepalive import Keepalive

# Moved to ndb_proto.options with the options they are the defaults of; importable from here too.
from ndb_proto.options import DEFAULT_MAX_IN_FLIGHT as DEFAULT_MAX_IN_FLIGHT
from ndb_proto.options import (
    DEFAULT_MAX_INCOMING_MESSAGE_SIZE as DEFAULT_MAX_INCOMING_MESSAGE_SIZE,
)
from ndb_proto.options import DEFAULT_MAX_MESSAGE_SIZE as DEFAULT_MAX_MESSAGE_SIZE
from ndb_proto.options import SERVER_MAX_PAYLOAD_LIMIT as SERVER_MAX_PAYLOAD_LIMIT
from ndb_proto.options import ProtocolOptions
from ndb_proto.pipeline import Pipeline
from ndb_proto.reconnect import Backoff, ConnectPlan, Reconnector
from ndb_proto.states import State as State
from ndb_proto.states import Trigger, transition
from ndb_proto.uri import Endpoint, parse_uri

# The states read on every request, looked up once: on Python 3.11 and older, reading a member
# of an Enum class goes through EnumType.__getattr__, about 0.4 µs each time.
_OPEN = State.OPEN
_CLOSING = State.CLOSING

_REPLY_NAME = re.compile(rb'\{"([A-Z_]+)":\{')
"""The start of every NemesisDB reply: an object whose single member is named in capitals."""


def check_request_size(request: Request[Any], max_message_size: int) -> None:
    """Raise `RequestTooLargeError` when ``request`` encodes to more than ``max_message_size``
    bytes: NemesisDB drops the whole connection for such a message. Used before a request is
    queued anywhere (a client pipeline checks each command as it is added)."""
    if len(request.payload) > max_message_size:
        raise RequestTooLargeError(
            f"{request.command.name} encodes to {len(request.payload)} bytes, more than "
            f"max_message_size={max_message_size}: the server would drop the connection "
            f"and every request in flight with it (raise max_message_size, up to "
            f"{SERVER_MAX_PAYLOAD_LIMIT}, only if the server's maxPayload is larger)"
        )


class ClientProtocol(ProtocolKeywords):
    """A sans-IO NemesisDB client over one or more server URIs (the pool).

    Its keyword arguments, and the read-only attributes of the same names, are the options
    declared in `ndb_proto.options.ProtocolOptions` (`ProtocolKeywords` is generated from them);
    ``options`` holds them all.
    """

    @classmethod
    def from_options(
        cls,
        uris: str | Sequence[str],
        options: ProtocolOptions,
        random: Callable[[], float] = _random.random,
    ) -> ClientProtocol:
        """A core for ``uris`` configured with ``options`` already built (and checked)."""
        # Through the constructor (a compiled build cannot make an instance without it): it
        # builds and checks an equal copy of the options, then the core keeps the very ones given.
        keywords = {
            option.name: getattr(options, option.name) for option in fields(ProtocolOptions)
        }
        protocol = cls(uris, random=random, **keywords)
        protocol.options = options
        return protocol

    def _configure(
        self, uris: str | Sequence[str], options: ProtocolOptions, random: Callable[[], float]
    ) -> None:
        uri_list = [uris] if isinstance(uris, str) else list(uris)
        if not uri_list:
            raise ValueError("uris must name at least one server")
        endpoints = [parse_uri(uri) for uri in uri_list]
        self.options = options
        self._max_message_size = options.max_message_size  # read by every submit
        self._subprotocols = tuple(options.subprotocols)
        self._extra_headers = [(k.encode(), v.encode()) for k, v in options.extra_headers]

        self._events: list[Event] = []
        self._pipeline = Pipeline(
            options.max_in_flight,
            self._events,
            options.reply_grace,
            options.reply_budget,
            options.read_reply_limit,
        )
        self._reconnector = Reconnector(endpoints, options.backoff or Backoff(), random)
        self._keepalive = Keepalive(options.ping_interval, options.ping_timeout)
        self._state = State.NEW  # changed only by _move, as ndb_proto.states allows
        self._endpoint: Endpoint | None = None
        self._handshake: ClientHandshake | None = None  # while CONNECTING
        self._channel: MessageChannel | None = None
        self._out = bytearray()
        self._close_deadline: float | None = None  # while CLOSING
        self._reconnect_requested = False
        self._has_connected = False

    # -- introspection -----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def endpoint(self) -> Endpoint | None:
        """The server of the current connection (None when there is none)."""
        return self._endpoint

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._reconnector.endpoints

    @property
    def in_flight(self) -> int:
        """Requests written on the current connection and not yet answered."""
        return self._pipeline.in_flight

    @property
    def has_data_to_send(self) -> bool:
        """Whether `data_to_send` would return anything (lets a writer sleep otherwise)."""
        channel = self._channel
        return bool(self._out) or (channel is not None and channel.has_data_to_send)

    @property
    def pending(self) -> int:
        """Requests submitted whose result has not been produced (abandoned ones excluded)."""
        return self._pipeline.waiting

    def events(self) -> list[Event]:
        """Take the events produced since the last call."""
        if not self._events:
            return []
        out = self._events[:]
        self._events.clear()
        return out

    def data_to_send(self) -> bytes:
        """Take the bytes to write to the socket, in order."""
        channel = self._channel
        out = self._out
        if not out:  # the usual case: only the channel's frames, taken without another copy
            return b"" if channel is None else channel.data_to_send()
        data = bytes(out)  # the handshake, or a close frame left by a lost connection: first
        out.clear()
        return data if channel is None else data + channel.data_to_send()

    # -- connecting --------------------------------------------------------------------------

    @property
    def has_connected(self) -> bool:
        """Whether a connection has ever opened."""
        return self._has_connected

    @property
    def open_failed(self) -> bool:
        """Whether ``open()`` should give up: every server of the pool has been tried once (the
        first round, which never waits) and no connection has opened."""
        return not self._has_connected and self._reconnector.failures >= len(
            self._reconnector.endpoints
        )

    def next_connect(self, now: float, *, manual: bool = False) -> ConnectPlan | None:
        """Where and when the next connection attempt should go, or None when no attempt is
        wanted: connected, connecting, closed, or disconnected without auto_reconnect and with
        no `reconnect` pending (``manual`` counts as one)."""
        state = self._state
        wanted = self.auto_reconnect or self._reconnect_requested or manual
        if state is State.NEW or (state is State.IDLE and wanted):
            return self._reconnector.plan(now)
        return None

    def reconnect(self, now: float) -> None:
        """The user asked for a new connection: drop the current one (what is in flight on it
        fails, outcome unknown) and plan connections until one opens, even without
        auto_reconnect."""
        state = self._state
        if state is State.CLOSED or state is State.CLOSING:
            raise ClientClosedError("the client is closed", outcome_unknown=False)
        self._reconnect_requested = True
        if state is State.OPEN or state is State.CONNECTING:
            self._lose(now, ConnectionLostError("reconnect() was called"))

    def connection_made(
        self, endpoint: Endpoint, now: float, *, started: float | None = None
    ) -> None:
        """The transport opened a socket (TLS included) to ``endpoint``: start the handshake.
        ``started`` is when the attempt began: ``connect_timeout`` covers it all, TCP and TLS
        included (by default it counts from ``now``)."""
        self._move(Trigger.CONNECTION_MADE)
        self._endpoint = endpoint
        self._handshake = ClientHandshake(
            (now if started is None else started) + self.connect_timeout, self.connect_timeout
        )
        self._out.clear()
        self._out += self._handshake.request(endpoint, self._subprotocols, self._extra_headers)

    def connection_failed(self, error: BaseException, now: float) -> None:
        """The transport could not open a socket to the planned endpoint. (After `close`, which
        may race with an attempt, it is ignored.)"""
        if self._move(Trigger.CONNECTION_FAILED) is not State.CLOSED:
            self._reconnector.failed(now)

    def connection_lost(self, error: BaseException | None, now: float) -> None:
        """The socket failed (``error``) or the transport dropped it on purpose."""
        state = self._state
        if state is State.OPEN or state is State.CONNECTING:
            reason = "the socket failed" if error is None else f"the socket failed: {error!r}"
            lost = ConnectionLostError(reason)
            lost.__cause__ = error
            self._lose(now, lost)
        elif state is State.CLOSING:
            self._finish_close()

    # -- requests ----------------------------------------------------------------------------

    def submit(self, request: Request[Any], deadline: float | None = None) -> int:
        """Queue a request; returns its id. Raises, before anything is sent, when the request is
        too large for the server or when no connection is open or coming."""
        if len(request.payload) > self._max_message_size:
            self._check_size(request)
        if self._state is _OPEN:  # the usual case, first
            request_id = self._pipeline.submit(request, deadline)
            self._write_window()
            return request_id
        self._check_can_submit()
        return self._pipeline.submit(request, deadline)

    def submit_many(
        self, requests: Sequence[Request[Any]], deadline: float | None = None
    ) -> list[int]:
        """Queue several requests at once, in order (a client pipeline); returns their ids.
        All or nothing: when one is too large, or no connection is open or coming, it raises
        before any is queued. What the window allows is framed at once, for one write."""
        for request in requests:
            self._check_size(request)
        state = self._check_can_submit()
        submit = self._pipeline.submit
        request_ids = [submit(request, deadline) for request in requests]
        if state is State.OPEN:
            self._write_window()
        return request_ids

    def _check_size(self, request: Request[Any]) -> None:
        check_request_size(request, self._max_message_size)

    def _check_can_submit(self) -> State:
        """The state, when requests may be queued in it; raises otherwise."""
        state = self._state
        if state is _OPEN:
            return state
        if state is State.CLOSED or state is State.CLOSING:
            raise ClientClosedError("the client is closed", outcome_unknown=False)
        if state is State.NEW:
            raise ClientClosedError("the client is not open yet", outcome_unknown=False)
        if state is State.IDLE and not self.auto_reconnect:
            raise ConnectionLostError("not connected", outcome_unknown=False)
        return state

    def abandon(self, request_id: int) -> None:
        """The caller gave up on a request (cancelled). No event will come for it; if it was
        written, its reply is still read and dropped, so no later caller receives it."""
        self._pipeline.abandon(request_id)

    def _write_window(self) -> None:
        channel = self._channel
        assert channel is not None
        send_text = channel.send_text
        for request in self._pipeline.take_sendable():
            send_text(request.payload)

    # -- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: ReceivedData, now: float) -> None:
        """Feed bytes read from the socket; ``b""`` means the peer closed its end (EOF)."""
        state = self._state
        if state is _OPEN or state is _CLOSING:
            self._receive_frames(data, now)
        elif state is State.CONNECTING:
            self._receive_handshake(data, now)
        # Bytes arriving in any other state belong to a connection already given up.

    def _receive_handshake(self, data: ReceivedData, now: float) -> None:
        handshake = self._handshake
        assert handshake is not None and self._endpoint is not None
        outcome = handshake.receive(data)
        if outcome is None:
            return
        if isinstance(outcome, HandshakeFailed):
            self._lose(now, outcome.error, outcome.data)
            return
        self._channel = MessageChannel(
            Connection(ConnectionType.CLIENT), self.max_incoming_message_size
        )
        self._handshake = None
        self._move(Trigger.HANDSHAKE_ACCEPTED)
        self._reconnector.succeeded(now)
        self._reconnect_requested = False
        self._has_connected = True
        self._keepalive.start(now)
        self._events.append(Connected(self._endpoint, outcome.subprotocol))
        self._write_window()
        if outcome.trailing:
            self._receive_frames(outcome.trailing, now)

    def _receive_frames(self, data: ReceivedData, now: float) -> None:
        channel = self._channel
        assert channel is not None
        items = channel.receive(data)
        closing = self._state is _CLOSING
        for item in items:
            if type(item) is bytes:
                if not closing and not self._reply(item, now):
                    return
            elif isinstance(item, PongReceived):
                self._keepalive.pong_received()
            elif isinstance(item, PeerClosed):
                if closing:
                    self._finish_close()
                    return
                channel.send_close(item.code if item.code != 1006 else CLOSE_NORMAL)
                detail = (
                    "the connection was dropped without a close frame (1006)"
                    if item.code == 1006
                    else f"the server closed the connection ({item.code} {item.reason}".rstrip()
                    + ")"
                )
                self._lose(now, ConnectionLostError(detail))
                return
            elif isinstance(item, BinaryReceived):
                if not closing:  # while closing, ignored like text
                    self._violation(now, "the server sent a binary message", item.data)
                    return
            else:
                assert isinstance(item, ChannelFailed)
                self._events.append(UndecodableData(item.data, item.reason))
                if closing:
                    self._finish_close()
                    return
                channel.send_close(item.code, item.reason[:100])
                self._lose(
                    now,
                    RemoteProtocolError(
                        f"invalid data from the server ({item.code}: {item.reason})", item.data
                    ),
                )
                return
        if self._state is _OPEN and self._pipeline.has_sendable():
            self._write_window()

    def _reply(self, text: bytes, now: float) -> bool:
        """Match one reply; False when it broke the connection."""
        try:
            message = decode(text)
        except DecodeError as exc:
            try:
                text.decode()
            except UnicodeDecodeError:
                reason = "invalid data from the server (1007: a text message is not UTF-8)"
                self._violation(now, reason, text, CLOSE_INVALID_DATA)
                return False
            named = _REPLY_NAME.match(text)
            if named is not None and self._pipeline.head_expects(named[1].decode()):
                # A whole reply, named as the oldest request expects, that cannot be decoded
                # (NemesisDB stores values nested deeper than our decoder reads): that request
                # alone fails; the connection and every other request carry on.
                error = RemoteProtocolError(f"the {named[1].decode()} reply cannot be read: {exc}")
                error.data = text
                self._events.append(UndecodableData(text, str(error)))
                if self._pipeline.fail_head(error, len(text)):
                    self._over_limit(now, named[1].decode(), len(text))
                    return False
                return True
            self._violation(now, f"a reply is not valid JSON ({exc})", text)
            return False
        if type(message) is not dict or len(message) != 1:
            self._violation(now, "a reply is not an object with one member", text)
            return False
        ((name, body),) = message.items()
        if type(body) is not dict:
            self._violation(now, f"the {name} reply's value is not an object", text)
            return False
        try:
            over_limit = self._pipeline.reply(name, body, len(text))
        except RemoteProtocolError as exc:
            exc.data = text
            self._violation(now, str(exc), text, error=exc)
            return False
        if over_limit:
            self._over_limit(now, name, len(text))
            return False
        return True

    def _over_limit(self, now: float, name: str, size: int) -> None:
        """A read's reply broke ``read_reply_limit``: it was matched, but the server may have
        dropped replies behind it, so nothing more is matched on this connection."""
        limit = self._pipeline.read_reply_limit
        error = ReadReplyLimitError(
            f"a {name} reply of {size} bytes is larger than read_reply_limit ({limit}); the "
            "replies behind it may have been dropped by the server"
        )
        assert self._channel is not None
        self._channel.send_close(CLOSE_NORMAL, "reply larger than expected")
        self._lose(now, error)

    def _violation(
        self,
        now: float,
        reason: str,
        data: bytes,
        code: int = CLOSE_PROTOCOL_ERROR,
        error: RemoteProtocolError | None = None,
    ) -> None:
        self._events.append(UndecodableData(data, reason))
        assert self._channel is not None
        self._channel.send_close(code, "unexpected reply")
        self._lose(now, error or RemoteProtocolError(reason, data))

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time at which `handle_timeout` has work to do, or None."""
        deadline = self._pipeline.next_deadline()  # read after every reply: no loop, no tuple
        candidate = self._keepalive.deadline
        if candidate is not None and (deadline is None or candidate < deadline):
            deadline = candidate
        if self._handshake is not None or self._close_deadline is not None:  # seldom
            for candidate in (
                None if self._handshake is None else self._handshake.deadline,
                self._close_deadline,
            ):
                if candidate is not None and (deadline is None or candidate < deadline):
                    deadline = candidate
        return deadline

    def handle_timeout(self, now: float) -> None:
        """Act on every deadline that has passed by ``now``."""
        stalled = self._pipeline.expire(now)
        state = self._state
        if state is State.OPEN:
            keepalive = self._keepalive
            if stalled:
                self._lose(
                    now,
                    ConnectionLostError(
                        "the oldest request got no reply even after its grace period; the server "
                        "may have dropped it, so later replies cannot be matched",
                    ),
                )
            elif keepalive.unanswered(now):
                self._lose(now, ConnectionLostError("the keepalive ping got no answer"))
            else:
                ping = keepalive.ping_due(now)
                if ping is not None:
                    assert self._channel is not None
                    self._channel.send_ping(ping)
        elif state is State.CONNECTING:
            handshake = self._handshake
            assert handshake is not None
            if now >= handshake.deadline:
                self._lose(now, handshake.timed_out())
        elif (
            state is State.CLOSING
            and self._close_deadline is not None
            and now >= self._close_deadline
        ):
            self._finish_close()

    # -- ending ------------------------------------------------------------------------------

    def close(self, now: float) -> None:
        """Close the client: every pending request fails now with `ClientClosedError`, a close
        frame is sent if a connection is open, and `Closed` follows when the server answers it
        (or after ``close_timeout``)."""
        state = self._state
        if state is State.CLOSED or state is State.CLOSING:
            return
        self._pipeline.fail_in_flight(
            lambda: ClientClosedError("the client was closed", outcome_unknown=True)
        )
        self._pipeline.fail_queued(
            lambda: ClientClosedError("the client was closed", outcome_unknown=False)
        )
        if self._move(Trigger.CLOSE) is State.CLOSING:
            assert self._channel is not None
            self._channel.send_close(CLOSE_NORMAL)
            self._close_deadline = now + self.close_timeout
            self._keepalive.stop()
        else:
            self._closed()

    def _finish_close(self) -> None:
        """The close handshake is over (answered, the socket ended, or ``close_timeout``)."""
        self._move(Trigger.CLOSE_DONE)
        self._closed()

    def _closed(self) -> None:
        self._channel = None
        self._handshake = None
        self._close_deadline = None
        self._keepalive.stop()
        self._events.append(Closed())

    def _move(self, trigger: Trigger) -> State:
        """Change state as `ndb_proto.states` allows: the only place the state changes. An
        illegal change raises `LocalProtocolError` before anything else happens."""
        self._state = state = transition(self._state, trigger)
        return state

    def _lose(self, now: float, error: NdbError, data: bytes = b"") -> None:
        """The current connection is over (not by `close`). Fail what was written on it; keep
        what was not if a reconnect will follow."""
        endpoint = self._endpoint
        assert endpoint is not None
        was_open = self._state is State.OPEN
        if data:
            self._events.append(UndecodableData(data, str(error)))

        def lost() -> ConnectionLostError:
            exc = ConnectionLostError(
                f"connection to {endpoint.uri} lost: {error}", outcome_unknown=True
            )
            exc.__cause__ = error
            return exc

        self._pipeline.fail_in_flight(lost)
        if was_open:
            self._reconnector.lost(now)
        else:
            self._reconnector.failed(now)
        if not self.auto_reconnect:

            def unsent() -> ConnectionLostError:
                exc = ConnectionLostError(
                    f"connection to {endpoint.uri} lost: {error}", outcome_unknown=False
                )
                exc.__cause__ = error
                return exc

            self._pipeline.fail_queued(unsent)
        self._move(Trigger.CONNECTION_ENDED)
        self._handshake = None
        self._keepalive.stop()
        self._events.append(ConnectionLost(endpoint, error))
        # The close frame (if any) queued on the channel still goes out with data_to_send.
        if self._channel is not None:
            self._out += self._channel.data_to_send()
            self._channel = None
