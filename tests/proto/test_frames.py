"""``ndb_proto.frames``: outgoing text frames built by hand must be exactly what a WebSocket peer
(wsproto) reads back, masked for a client and unmasked for a server, at every length form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from ndb_proto.frames import text_frame
from tests.proto.helpers import budget

EDGES = [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70001]


def read(data: bytes, *, by: ConnectionType) -> list[TextMessage]:
    peer = Connection(by)
    peer.receive_data(data)
    events = list(peer.events())
    assert all(isinstance(event, TextMessage) for event in events), events
    return events  # type: ignore[return-value]


def length_field(frame: bytes) -> int:
    return frame[1] & 0x7F


@pytest.mark.parametrize("size", EDGES)
@pytest.mark.parametrize("mask", [True, False])
def test_length_forms_and_masking(size: int, mask: bool) -> None:
    payload = ("é" * (size // 2) + "x" * (size % 2)).encode()  # valid UTF-8, exact size
    assert len(payload) == size
    frame = text_frame(payload, mask=mask)
    assert frame[0] == 0x81  # FIN, text
    assert bool(frame[1] & 0x80) is mask
    field = length_field(frame)
    assert field == (size if size < 126 else 126 if size < 65536 else 127)
    header = 2 + (0 if size < 126 else 2 if size < 65536 else 8) + (4 if mask else 0)
    assert len(frame) == header + size
    # A server reads what a client masked; a client reads what a server sent unmasked.
    (message,) = read(frame, by=ConnectionType.SERVER if mask else ConnectionType.CLIENT)
    assert message.data == payload.decode() and message.message_finished
    if mask and size >= 4:
        assert frame[header:] != payload or payload == b""  # masked on the wire


def test_each_masked_frame_gets_a_fresh_key() -> None:
    keys = {text_frame(b"same", mask=True)[2:6] for _ in range(20)}
    assert len(keys) > 1


@budget(200)
@given(text=st.text(max_size=300), mask=st.booleans())
def test_any_text_round_trips(text: str, mask: bool) -> None:
    frame = text_frame(text.encode(), mask=mask)
    events = read(frame, by=ConnectionType.SERVER if mask else ConnectionType.CLIENT)
    assert "".join(event.data for event in events) == text


def test_every_frame_gets_a_fresh_masking_key() -> None:
    """Keys are drawn from the system's random source in blocks; across more frames than one
    block holds, every frame still reads back whole and keys do not repeat in a pattern."""
    frames = [text_frame(b"payload %d" % i, mask=True) for i in range(2500)]
    keys = [frame[2:6] for frame in frames]
    assert len(set(keys)) > 2400  # 2500 random 32-bit keys: a collision or two at most
    peer = Connection(ConnectionType.SERVER)
    peer.receive_data(b"".join(frames))
    texts = [event.data for event in peer.events()]
    assert texts == [f"payload {i}" for i in range(2500)]
