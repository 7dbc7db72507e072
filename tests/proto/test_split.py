"""However the incoming bytes are cut into chunks, the same things happen.

Client role: a handshake response followed by reply frames (some fragmented into continuation
frames, with pings and pongs in between, multi-byte UTF-8 cut anywhere) and an optional ending
(close frame, EOF, a binary message, a masked frame). Server role: ``MessageChannel`` over a
server-side wsproto connection, with a size limit. The outcome of one chunk, byte by byte and
random cut points must be identical (``UndecodableData``/``ChannelFailed`` keep the raw bytes of
the chunk where the failure was found, so those bytes are left out of the comparison).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from ndb_proto import calls
from ndb_proto.channel import ChannelEvent, ChannelFailed, MessageChannel
from ndb_proto.client import ClientProtocol
from ndb_proto.commands import Command, Request
from tests.proto.helpers import (
    OP_TEXT,
    URI,
    FakeServer,
    budget,
    compact,
    describe_all,
    frame,
    start,
)

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
texts = st.text(alphabet=st.sampled_from('aé€🙂\x00"\\'), max_size=12)

reply_specs = st.tuples(
    st.sampled_from(["ok", "err", "ERR"]),
    values,
    st.lists(st.integers(1, 40), max_size=3),  # fragment cut points (characters)
    st.sampled_from(["", "ping", "pong"]),  # a control frame before the reply
)
endings = st.sampled_from(["", "close", "eof", "binary", "masked"])


def cuts(data: bytes, points: list[int]) -> Iterator[bytes]:
    start = 0
    for point in sorted(set(points)):
        if 0 < point < len(data):
            yield data[start:point]
            start = point
    if data[start:]:
        yield data[start:]


BOUNDED_GET = Command("KV_GET")


def client_run(
    specs: list[tuple[str, Any, list[int], str]], ending: str, points: list[int] | None
) -> tuple[list[tuple[Any, ...]], Any, int]:
    """Build a client and the bytes its server sends, feed them cut at ``points`` (None: one
    byte at a time); returns the events, what the client wrote after the handshake, and the
    number of bytes fed."""
    client = ClientProtocol(URI, max_incoming_message_size=None)
    server = FakeServer()
    server.receive(start(client))
    for index in range(len(specs)):
        get = calls.kv_get(key=f"k{index}")
        # Declared with a bounded reply, so all go out at once: this is about reading frames,
        # not about the window (nothing is written behind a real GET until it is answered).
        client.submit(Request(BOUNDED_GET, get.payload, get.result))  # written once open
    stream = bytearray(server.data_to_send())
    for index, (kind, value, fragments, control) in enumerate(specs):
        if control == "ping":
            stream += server.ping(b"ping%d" % index)
        elif control == "pong":
            stream += server.pong(b"pong")
        if kind == "ok":
            body: dict[str, Any] = {"keys": {f"k{index}": value}, "st": 1}
            name = "KV_GET_RSP"
        else:
            body = {"m": compact(value)[:10], "st": 41}
            name = "KV_GET_RSP" if kind == "err" else "ERR"
        stream += server.reply(name, body, fragments=fragments)
    if ending == "close":
        stream += server.close(1001, "bye")
    elif ending == "binary":
        stream += server.binary(b"\x00")
    elif ending == "masked":
        stream += frame(OP_TEXT, b"{}", mask=b"abcd")
    data = bytes(stream)
    chunks = [data[i : i + 1] for i in range(len(data))] if points is None else cuts(data, points)
    for chunk in chunks:
        client.receive_data(chunk, 1.0)
    if ending == "eof":
        client.receive_data(b"", 1.0)
    written = server.receive(client.data_to_send())  # pongs, close frames
    return describe_all(client.events()), written, len(data)


@budget(150)
@given(specs=st.lists(reply_specs, min_size=1, max_size=4), ending=endings, data=st.data())
def test_client_events_do_not_depend_on_chunking(
    specs: list[tuple[str, Any, list[int], str]], ending: str, data: st.DataObject
) -> None:
    whole, written, size = client_run(specs, ending, [])
    assert [kind for kind, *_ in whole].count("connected") == 1
    replies = [e for e in whole if e[0] in ("reply", "failed")]
    assert len(replies) == len(specs) or ending in ("close", "eof", "binary", "masked")
    byte_by_byte = client_run(specs, ending, None)
    assert byte_by_byte[0] == whole and byte_by_byte[1] == written
    points = data.draw(st.lists(st.integers(1, size - 1), max_size=12), label="cut points")
    random_cuts = client_run(specs, ending, points)
    assert random_cuts[0] == whole and random_cuts[1] == written


def test_client_chunking_example_with_everything() -> None:
    specs = [
        ("ok", {"a": "🙂é"}, [1, 5, 30], "ping"),
        ("err", None, [], "pong"),
        ("ERR", [1], [3], ""),
    ]
    whole, written, _ = client_run(specs, "close", [])
    byte = client_run(specs, "close", None)
    assert byte[0] == whole and byte[1] == written
    assert [e[0] for e in whole] == ["connected", "reply", "failed", "failed", "lost"]
    assert whole[1][2] == {"a": "🙂é"}
    assert written.pongs == [b"ping0"] and written.closes == [(1001, "")]


# --- server role -------------------------------------------------------------------------------

client_messages = st.lists(
    st.one_of(
        st.tuples(st.just("text"), texts, st.lists(st.integers(1, 11), max_size=2)),
        st.tuples(st.just("binary"), st.binary(max_size=20), st.lists(st.integers(1, 19))),
        st.tuples(st.just("ping"), st.binary(max_size=8), st.just([])),
        st.tuples(st.just("pong"), st.binary(max_size=8), st.just([])),
    ),
    max_size=8,
)


def client_bytes(messages: list[tuple[str, Any, list[int]]], ending: str) -> bytes:
    peer = Connection(ConnectionType.CLIENT)
    out = bytearray()
    for kind, payload, fragments in messages:
        if kind in ("text", "binary"):
            event = TextMessage if kind == "text" else BytesMessage
            start = 0
            for cut in sorted(set(fragments)):
                if 0 < cut < len(payload):
                    out += peer.send(event(payload[start:cut], message_finished=False))
                    start = cut
            out += peer.send(event(payload[start:], message_finished=True))
        elif kind == "ping":
            out += peer.send(Ping(payload))
        else:
            out += peer.send(Pong(payload))
    if ending == "close":
        out += peer.send(CloseConnection(1000, "done"))
    elif ending == "masked":
        out += frame(OP_TEXT, b"unmasked")
    return bytes(out)


def server_run(
    data: bytes, limit: int | None, chunks: list[bytes], eof: bool
) -> tuple[list[ChannelEvent | tuple[Any, ...]], bytes]:
    channel = MessageChannel(Connection(ConnectionType.SERVER), limit)
    out: list[ChannelEvent | tuple[Any, ...]] = []
    for chunk in chunks:
        out += channel.receive(chunk)
    if eof:
        out += channel.receive(b"")
    normalised: list[ChannelEvent | tuple[Any, ...]] = [
        ("failed", item.code, item.reason) if isinstance(item, ChannelFailed) else item
        for item in out
    ]
    return normalised, channel.data_to_send()


@budget(200)
@given(
    messages=client_messages,
    ending=st.sampled_from(["", "close", "eof", "masked"]),
    limit=st.none() | st.integers(4, 40),
    data=st.data(),
)
def test_server_channel_does_not_depend_on_chunking(
    messages: list[tuple[str, Any, list[int]]],
    ending: str,
    limit: int | None,
    data: st.DataObject,
) -> None:
    stream = client_bytes(messages, ending)
    eof = ending == "eof"
    whole = server_run(stream, limit, list(cuts(stream, [])), eof)
    byte_by_byte = server_run(stream, limit, [stream[i : i + 1] for i in range(len(stream))], eof)
    assert byte_by_byte == whole
    points = data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cut points")
    assert server_run(stream, limit, list(cuts(stream, points)), eof) == whole
    # Every complete message within the limit arrives whole, in order, until any failure.
    expected = [payload.encode() for kind, payload, _ in messages if kind == "text"]
    texts_out = [item for item in whole[0] if isinstance(item, bytes)]
    assert texts_out == expected[: len(texts_out)]
    if limit is None and ending != "masked":
        assert texts_out == expected
