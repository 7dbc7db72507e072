"""`MessageChannel` directly, in the server role (as ``ndb_server`` uses it): client frames are
masked, made by a client-side wsproto connection or by hand."""

# ``channel.state`` changes under calls; mypy would narrow it as if it could not.
# mypy: disable-error-code="comparison-overlap"

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from ndb_proto.channel import (
    BinaryReceived,
    ChannelFailed,
    MessageChannel,
    PeerClosed,
    PongReceived,
)
from ndb_proto.errors import LocalProtocolError
from tests.proto.helpers import OP_BINARY, OP_CLOSE, OP_TEXT, frame

MASK = b"\x01\x02\x03\x04"


def pair(limit: int | None = 64) -> tuple[MessageChannel, Connection]:
    """A server-role channel and the client connection that talks to it."""
    return MessageChannel(Connection(ConnectionType.SERVER), limit), Connection(
        ConnectionType.CLIENT
    )


def parse_from_server(client: Connection, data: bytes) -> list[object]:
    client.receive_data(data)
    return list(client.events())


def test_text_messages_whole_and_fragmented() -> None:
    channel, peer = pair()
    data = peer.send(TextMessage("héllo 🙂"))
    data += peer.send(TextMessage("ab", message_finished=False))
    data += peer.send(Ping(b"in between"))  # control frames may come between fragments
    data += peer.send(TextMessage("cd", message_finished=True))
    assert channel.receive(data) == ["héllo 🙂".encode(), b"abcd"]
    (pong,) = parse_from_server(peer, channel.data_to_send())
    assert pong == Pong(b"in between")
    assert channel.data_to_send() == b""
    assert channel.state is ConnectionState.OPEN and channel.is_open


def test_binary_pong_close_and_eof() -> None:
    channel, peer = pair()
    data = peer.send(BytesMessage(b"\x00", message_finished=False))
    data += peer.send(BytesMessage(b"\x01"))
    data += peer.send(Pong(b"p"))
    data += peer.send(CloseConnection(1001, "bye"))
    assert channel.receive(data) == [
        BinaryReceived(b"\x00\x01"),
        PongReceived(b"p"),
        PeerClosed(1001, "bye"),
    ]
    assert channel.state is ConnectionState.REMOTE_CLOSING and not channel.is_open
    channel.send_close(1001)  # the echo
    assert channel.state is ConnectionState.CLOSED
    (echo,) = parse_from_server(peer, channel.data_to_send())
    assert echo == CloseConnection(1001, "")
    channel.send_close()  # nothing more can be sent: ignored
    assert channel.data_to_send() == b""
    # Bytes after the close handshake are ignored (wsproto refuses them).
    assert channel.receive(frame(OP_TEXT, b"x", mask=MASK)) == []


def test_eof_is_an_abnormal_close() -> None:
    channel, peer = pair()
    assert channel.receive(peer.send(TextMessage("a", message_finished=False))) == []
    assert channel.receive(b"") == [PeerClosed(1006, "")]
    assert channel.state is ConnectionState.CLOSED


def test_sending() -> None:
    channel, peer = pair()
    channel.send_text("reply")
    channel.send_ping(b"k")
    assert parse_from_server(peer, channel.data_to_send()) == [
        TextMessage("reply"),
        Ping(b"k"),
    ]
    assert not channel.has_data_to_send
    channel.send_text(b"as bytes")
    assert channel.has_data_to_send
    assert parse_from_server(peer, channel.data_to_send()) == [TextMessage("as bytes")]
    channel.send_close(1000, "done")
    assert channel.state is ConnectionState.LOCAL_CLOSING
    with pytest.raises(LocalProtocolError, match="cannot send a message in state LOCAL_CLOSING"):
        channel.send_text("too late")
    # A ping after our close frame gets no pong (wsproto would refuse to send one).
    assert channel.receive(peer.send(Ping(b"late"))) == []
    assert parse_from_server(peer, channel.data_to_send()) == [CloseConnection(1000, "done")]
    assert channel.receive(peer.send(CloseConnection(1000))) == [PeerClosed(1000, "")]
    assert channel.state is ConnectionState.CLOSED


@pytest.mark.parametrize("kind", ["text", "fragmented-text", "binary"])
def test_size_limit_exact_and_one_over(kind: str) -> None:
    def message(size: int) -> bytes:
        peer = Connection(ConnectionType.CLIENT)
        if kind == "text":
            return peer.send(TextMessage("é" + "x" * (size - 2)))
        if kind == "binary":
            return peer.send(BytesMessage(b"x" * size))
        return peer.send(TextMessage("x" * 10, message_finished=False)) + peer.send(
            TextMessage("é" + "x" * (size - 12))
        )

    channel, _ = pair(64)
    items = channel.receive(message(64))
    assert len(items) == 1
    channel, _ = pair(64)
    data = message(65)
    (failed,) = channel.receive(data)
    assert isinstance(failed, ChannelFailed)
    assert (failed.code, failed.reason) == (1009, "message larger than 64 bytes")
    # A single frame over the limit is refused from its header, before its payload is read.
    assert failed.data and failed.data in data
    assert channel.failed and not channel.is_open
    assert channel.receive(message(10)) == []  # nothing more after a failure


def test_no_limit() -> None:
    channel, peer = pair(None)
    assert channel.receive(peer.send(TextMessage("x" * 100_000))) == [b"x" * 100_000]
    assert channel.receive(peer.send(BytesMessage(b"y" * 100_000))) == [
        BinaryReceived(b"y" * 100_000)
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(OP_TEXT, b"x"), 1002),  # a client must mask
        (frame(OP_TEXT, b"\xff", mask=MASK, fin=False), 1007),  # invalid UTF-8, fragmented
        (frame(OP_CLOSE, b"\x03\xe8\xff", mask=MASK), 1007),  # invalid UTF-8 close reason
        (frame(OP_CLOSE, b"\x00\x01", mask=MASK), 1002),  # close code 1 is not allowed
        (frame(OP_BINARY, b"x", rsv=2, mask=MASK), 1002),
        (frame(0, b"x", mask=MASK), 1002),  # continuation without a message
    ],
)
def test_protocol_errors(data: bytes, code: int) -> None:
    channel, _ = pair()
    (failed,) = channel.receive(data)
    assert isinstance(failed, ChannelFailed)
    assert failed.code == code and failed.data == data and failed.reason
    assert channel.failed


def test_items_before_a_failure_are_kept() -> None:
    channel, peer = pair()
    data = peer.send(TextMessage("ok")) + frame(OP_TEXT, b"unmasked")
    items = channel.receive(data)
    assert items[0] == b"ok" and isinstance(items[1], ChannelFailed)


def test_an_unfragmented_text_frame_is_passed_on_unvalidated() -> None:
    """The fast path leaves UTF-8 validation to the JSON decoder that reads the message."""
    channel, _ = pair()
    assert channel.receive(frame(OP_TEXT, b"\xc3", mask=MASK)) == [b"\xc3"]


def test_a_frame_declaring_an_impossible_length_fails() -> None:
    channel, _ = pair(None)
    head = bytes([0x81, 0xFF]) + (1 << 63).to_bytes(8, "big") + MASK
    (failed,) = channel.receive(head)
    assert isinstance(failed, ChannelFailed) and failed.code == 1002


@pytest.mark.parametrize(
    "head",
    [
        bytes([0x81, 0xFE, 0, 5]),  # 5 in the 16-bit form
        bytes([0x81, 0xFF]) + (300).to_bytes(8, "big"),  # 300 in the 64-bit form
    ],
)
def test_a_length_not_in_its_shortest_form_is_a_protocol_error(head: bytes) -> None:
    channel, _ = pair(None)
    (failed,) = channel.receive(head + MASK + b"hello")
    assert isinstance(failed, ChannelFailed) and failed.code == 1002
    assert failed.reason == "invalid frame header"


def test_pending_size_counts_queued_bytes() -> None:
    channel, _ = pair()
    assert channel.pending_size == 0
    channel.send_text(b"abc")
    assert channel.pending_size == 2 + 3  # a server's frame: 2-byte header, unmasked
    channel.data_to_send()
    assert channel.pending_size == 0


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_messages_are_bytes_whatever_buffer_type_the_chunks_come_in(kind: type) -> None:
    """Chunks are read in place when nothing is left over, and buffered otherwise: either way
    a message comes out as ``bytes``, and a frame cut between chunks is put back together."""
    channel, _ = pair(None)
    one, two = frame(OP_TEXT, b"first", mask=MASK), frame(OP_TEXT, b"second", mask=MASK)
    data = one + two
    cut = len(one) + 3
    got = channel.receive(kind(data[:cut])) + channel.receive(kind(data[cut:]))
    assert got == [b"first", b"second"]
    assert all(type(item) is bytes for item in got)


@pytest.mark.parametrize("cut", [3, 5, 9])
def test_a_long_length_header_cut_between_chunks(cut: int) -> None:
    channel, _ = pair(None)
    data = frame(OP_TEXT, b"x" * 70000, mask=MASK)
    assert channel.receive(data[:cut]) == []
    assert channel.receive(data[cut:]) == [b"x" * 70000]


def client_channel(limit: int | None) -> MessageChannel:
    """A client-role channel: it expects the server's frames unmasked."""
    return MessageChannel(Connection(ConnectionType.CLIENT), limit)


@pytest.mark.parametrize("limit", [None, 64])
@pytest.mark.parametrize("size", [0, 1, 64, 65, 125, 126])
def test_a_client_read_of_one_small_text_frame_gives_what_any_cut_of_it_gives(
    limit: int | None, size: int
) -> None:
    """A read holding exactly one whole small text frame (a client's usual read, which the
    channel takes in a few steps) gives the same items as the same frame cut in two, or
    followed by part of the next one: its payload, or a 1009 failure over the limit."""
    payload = bytes(range(65, 91)) * 5
    data = frame(OP_TEXT, payload[:size])
    whole = client_channel(limit).receive(data)
    cut = client_channel(limit)
    assert cut.receive(data[:1]) == []
    assert cut.receive(data[1:]) == whole
    followed = client_channel(limit)
    next_frame = frame(OP_TEXT, b"next")
    assert followed.receive(data + next_frame[:3]) == whole
    if limit is None or size <= limit:
        assert whole == [payload[:size]] and type(whole[0]) is bytes
        assert followed.receive(next_frame[3:]) == [b"next"]
    else:
        (failed,) = whole
        assert isinstance(failed, ChannelFailed) and failed.code == 1009


def test_a_client_reads_small_frames_that_are_not_whole_text_messages_through_the_loop() -> None:
    """Small frames a client must not take as a whole message by their size alone: masked,
    fragmented, binary, or a continuation."""
    channel = client_channel(None)
    (failed,) = channel.receive(frame(OP_TEXT, b"masked", mask=MASK))  # a server must not mask
    assert isinstance(failed, ChannelFailed) and failed.code == 1002
    channel = client_channel(None)
    assert channel.receive(frame(OP_TEXT, b"ab", fin=False)) == []
    assert channel.receive(frame(0x0, b"cd")) == [b"abcd"]
    (binary,) = channel.receive(frame(OP_BINARY, b"raw"))
    assert binary == BinaryReceived(b"raw")
