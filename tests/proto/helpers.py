"""Test helpers for ``ndb_proto``: a scripted fake server on wsproto's server role, raw frame
builders, and a way to compare event lists.

`FakeServer` is the other end of a `ClientProtocol`: it completes (or refuses) the upgrade
handshake, parses the client's frames into request texts (and records pongs, pings and close
frames), and frames reply texts back. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from wsproto import WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import generate_accept_token

from ndb_proto import ClientProtocol
from ndb_proto.events import (
    Closed,
    Connected,
    ConnectionLost,
    Event,
    ReplyReceived,
    RequestFailed,
    UndecodableData,
)

URI = "ws://db.example:1987/"

EXAMPLES_SCALE = float(os.environ.get("NDB_PROTO_EXAMPLES_SCALE", "1"))
"""Multiplies every property's example budget (e.g. 10 for a nightly run)."""


def budget(max_examples: int, **options: Any) -> settings:
    """Hypothesis settings for a property: ``max_examples`` scaled by ``EXAMPLES_SCALE``, no
    deadline and no too-slow health check (loaded CI machines), plus ``options``."""
    return settings(
        max_examples=max(1, round(max_examples * EXAMPLES_SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        **options,
    )


FAKE_TOKEN_BASE = 2**63 + 4_242
"""Fake session tokens are above 2**63, as real ones often are."""

# Opcodes, for hand-made frames.
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_form: int | None = None,
) -> bytes:
    """One raw WebSocket frame. ``length_form`` forces the 7-, 16- or 64-bit length encoding
    (7 / 16 / 64) instead of the shortest one; ``mask`` masks the payload (a server must not)."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    size = len(payload)
    form = length_form or (7 if size < 126 else 16 if size < 65536 else 64)
    mask_bit = 0x80 if mask is not None else 0
    if form == 7:
        header = struct.pack("!BB", first, mask_bit | size)
    elif form == 16:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


def text_frame(text: str | bytes, *, fin: bool = True, opcode: int = OP_TEXT) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return frame(opcode, data, fin=fin)


def close_frame(code: int | None = 1000, reason: str = "") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
    return frame(OP_CLOSE, payload)


def compact(obj: Any) -> str:
    """JSON as NemesisDB writes it: compact, raw UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Received:
    """What the fake server parsed from the client's bytes."""

    texts: list[str] = field(default_factory=list)
    binaries: list[bytes] = field(default_factory=list)
    pings: list[bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    closes: list[tuple[int, str]] = field(default_factory=list)

    def extend(self, other: Received) -> None:
        self.texts += other.texts
        self.binaries += other.binaries
        self.pings += other.pings
        self.pongs += other.pongs
        self.closes += other.closes


class FakeServer:
    """The server end of one connection, scripted by the test.

    ``reject`` refuses the upgrade with that HTTP status; ``subprotocol`` is accepted (echoed) if
    given. Pings from the client are answered with pongs unless ``answer_pings`` is False.
    """

    def __init__(
        self,
        *,
        reject: int | None = None,
        subprotocol: str | None = None,
        answer_pings: bool = True,
    ) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.reject = reject
        self.subprotocol = subprotocol
        self.answer_pings = answer_pings
        self.upgrade: Request | None = None
        self.received = Received()
        self._out = bytearray()
        self._text_parts: list[str] = []
        self._binary_parts: list[bytes] = []

    # -- the client's bytes ---------------------------------------------------------------

    def receive(self, data: bytes) -> Received:
        """Parse bytes the client wrote; returns what they completed (also kept in
        ``received``). The handshake is answered as configured."""
        new = Received()
        if not data:
            return new
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, Request):
                self.upgrade = event
                if self.reject is not None:
                    body = b"not found"
                    self._out += self.ws.send(
                        RejectConnection(
                            status_code=self.reject,
                            headers=[(b"content-length", str(len(body)).encode())],
                            has_body=True,
                        )
                    )
                    self._out += self.ws.send(RejectData(data=body))
                else:
                    self._out += self.ws.send(AcceptConnection(subprotocol=self.subprotocol))
            elif isinstance(event, TextMessage):
                self._text_parts.append(event.data)
                if event.message_finished:
                    new.texts.append("".join(self._text_parts))
                    self._text_parts.clear()
            elif isinstance(event, BytesMessage):
                self._binary_parts.append(bytes(event.data))
                if event.message_finished:
                    new.binaries.append(b"".join(self._binary_parts))
                    self._binary_parts.clear()
            elif isinstance(event, Ping):
                new.pings.append(bytes(event.payload))
                if self.answer_pings:
                    self._out += self.ws.send(event.response())
            elif isinstance(event, Pong):
                new.pongs.append(bytes(event.payload))
            else:
                assert isinstance(event, CloseConnection), event
                new.closes.append((event.code, event.reason or ""))
        self.received.extend(new)
        return new

    # -- bytes for the client -------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def text(self, text: str, *, fragments: Sequence[int] = ()) -> bytes:
        """One text message; ``fragments`` are cut points (in characters) that split it into
        continuation frames (``TextMessage(..., message_finished=False)``)."""
        out = bytearray()
        start = 0
        for cut in sorted(set(fragments)):
            if 0 < cut < len(text):
                out += self.ws.send(TextMessage(text[start:cut], message_finished=False))
                start = cut
        out += self.ws.send(TextMessage(text[start:], message_finished=True))
        return bytes(out)

    def reply(self, name: str, body: Any, *, fragments: Sequence[int] = ()) -> bytes:
        return self.text(compact({name: body}), fragments=fragments)

    def binary(self, data: bytes) -> bytes:
        return self.ws.send(BytesMessage(data))

    def ping(self, payload: bytes = b"") -> bytes:
        return self.ws.send(Ping(payload))

    def pong(self, payload: bytes = b"") -> bytes:
        return self.ws.send(Pong(payload))

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        return self.ws.send(CloseConnection(code, reason))


def accept_response(handshake_request: bytes, *headers: bytes) -> bytes:
    """A hand-made ``101`` answer to a client's upgrade request (correct accept token), with
    extra raw header lines, for responses wsproto's server role refuses to produce."""
    for line in handshake_request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            token = generate_accept_token(value.strip())
            break
    else:  # pragma: no cover - every upgrade request has a key
        raise AssertionError("no Sec-WebSocket-Key")
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + token,
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def start(client: ClientProtocol, now: float = 0.0) -> bytes:
    """``next_connect`` → ``connection_made``; returns the handshake request bytes."""
    plan = client.next_connect(now)
    assert plan is not None
    client.connection_made(plan.endpoint, max(now, plan.at))
    return client.data_to_send()


def handshake(client: ClientProtocol, server: FakeServer, now: float = 0.0) -> list[Event]:
    """Run the upgrade between a CONNECTING client and ``server``; returns the client's events."""
    server.receive(client.data_to_send())
    client.receive_data(server.data_to_send(), now)
    return client.events()


def open_client(
    uri: str | Sequence[str] = URI,
    *,
    now: float = 0.0,
    server: FakeServer | None = None,
    **options: Any,
) -> tuple[ClientProtocol, FakeServer]:
    """A ClientProtocol with an open connection to a fresh FakeServer."""
    client = ClientProtocol(uri, **options)
    server = server or FakeServer()
    server.receive(start(client, now))
    client.receive_data(server.data_to_send(), now)
    events = client.events()
    assert len(events) == 1 and isinstance(events[0], Connected), events
    return client, server


def reconnect(
    client: ClientProtocol, now: float, *, manual: bool = False, server: FakeServer | None = None
) -> tuple[FakeServer, list[Event]]:
    """Follow ``next_connect`` after a loss and run the handshake on a new FakeServer."""
    plan = client.next_connect(now, manual=manual)
    assert plan is not None
    client.connection_made(plan.endpoint, now)
    server = server or FakeServer()
    return server, handshake(client, server, now)


def pump(client: ClientProtocol, server: FakeServer) -> Received:
    """Move whatever the client wants to write to the server; returns what it parsed."""
    return server.receive(client.data_to_send())


def answer_in_turn(
    client: ClientProtocol, server: FakeServer, replies: Sequence[str], now: float = 0.0
) -> list[str]:
    """Answer the requests in flight one reply at a time, letting the client write what it may
    after each (nothing goes out behind an unanswered reply of unbounded size, such as a GET's).
    Returns every request text written meanwhile."""
    written = pump(client, server).texts
    for reply in replies:
        client.receive_data(server.text(reply), now)
        written += pump(client, server).texts
    return written


def describe(event: Event) -> tuple[Any, ...]:
    """A comparable summary of an event (exceptions compared by type, text and flags; the raw
    bytes of UndecodableData left out, since they depend on how the input was chunked)."""
    if isinstance(event, ReplyReceived):
        return ("reply", event.request_id, event.value)
    if isinstance(event, RequestFailed):
        return ("failed", event.request_id, describe_error(event.error))
    if isinstance(event, Connected):
        return ("connected", event.endpoint, event.subprotocol)
    if isinstance(event, ConnectionLost):
        return ("lost", event.endpoint, describe_error(event.error))
    if isinstance(event, UndecodableData):
        return ("undecodable", event.reason)
    assert isinstance(event, Closed)
    return ("closed",)


def describe_error(error: BaseException) -> tuple[Any, ...]:
    return (
        type(error).__name__,
        str(error),
        getattr(error, "outcome_unknown", None),
        getattr(error, "status", None),
    )


def describe_all(events: Iterable[Event]) -> list[tuple[Any, ...]]:
    return [describe(event) for event in events]


def only(events: Sequence[Event], kind: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]
