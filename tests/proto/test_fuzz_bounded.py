"""The fuzz property of ``fuzz/fuzz_client.py`` (`check`), under hypothesis with a bounded budget:
random bytes, structured frame sequences (valid and broken), and handshake responses."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ndb_proto.events import Event, RequestFailed
from tests.proto.helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    budget,
    frame,
)


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_client.py"
    spec = importlib.util.spec_from_file_location("fuzz_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_client", module)
    spec.loader.exec_module(module)
    return module


fuzz_client = _load()
check = fuzz_client.check

reply_texts = st.sampled_from(
    [
        '{"KV_GET_RSP":{"keys":{"a":1},"st":1}}',
        '{"KV_GET_RSP":{"keys":{},"st":1}}',
        '{"KV_COUNT_RSP":{"cnt":2,"st":1}}',
        '{"SH_NEW_RSP":{"st":1,"tkn":18446744073709551615}}',
        '{"ERR":{"m":"","st":3}}',
        '{"KV_GET_RSP":{"m":"x","st":41,"tkn":null}}',
        '{"KV_GET_RSP":{"keys":5,"st":1}}',
        '{"KV_COUNT_RSP":{"st":"1"}}',
        '{"SH_NEW_RSP":{"st":1,"tkn":"x"}}',
        '{"ZZ_RSP":{"st":1}}',
        "[]",
        "{}",
        '{"a":1}',
        '{"KV_GET_RSP":{"keys":{"a":' + "[" * 20000 + "]" * 20000 + '},"st":1}}',
        '{"KV_GET_RSP":{"keys":{"a":1e400},"st":1}}',
        '{"KV_GET_RSP":{"keys":{"a":"\\ud800"},"st":1}}',
    ]
) | st.text(max_size=40)

frames = st.one_of(
    st.builds(lambda t: frame(OP_TEXT, t.encode()), reply_texts),
    st.builds(  # a message in continuation frames
        lambda t, cut: (
            frame(OP_TEXT, t.encode()[:cut], fin=False) + frame(OP_CONT, t.encode()[cut:])
        ),
        reply_texts,
        st.integers(0, 50),
    ),
    st.builds(lambda p: frame(OP_PING, p), st.binary(max_size=10)),
    st.builds(lambda p: frame(OP_PONG, p), st.binary(max_size=10)),
    st.builds(lambda p: frame(OP_BINARY, p), st.binary(max_size=10)),
    st.builds(
        lambda code, reason: frame(OP_CLOSE, struct.pack("!H", code) + reason),
        st.integers(0, 65535),
        st.binary(max_size=8),
    ),
    st.just(frame(OP_CLOSE, b"")),
    st.builds(lambda: frame(OP_TEXT, b"x" * 1025)),  # over the 1 KiB incoming limit
    st.builds(
        lambda op, payload, fin, rsv, masked, form: frame(
            op, payload, fin=fin, rsv=rsv, mask=b"abcd" if masked else None, length_form=form
        ),
        st.integers(0, 15),
        st.binary(max_size=20),
        st.booleans(),
        st.integers(0, 7),
        st.booleans(),
        st.sampled_from([None, 7, 16, 64]),
    ),
    st.binary(min_size=1, max_size=6),  # noise between frames
)

header_lines = st.lists(
    st.sampled_from(
        [
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Connection: \xff",
            b"Sec-WebSocket-Accept: x",
            b"Sec-WebSocket-Protocol: \xe9",
            b"Sec-WebSocket-Extensions: permessage-deflate",
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            b"Bad Header",
        ]
    )
    | st.binary(max_size=20),
    max_size=5,
)
handshakes = st.builds(
    lambda status, lines, body: (
        b"HTTP/1.1 "
        + status
        + b" X\r\n"
        + b"".join(line + b"\r\n" for line in lines)
        + b"\r\n"
        + body
    ),
    st.sampled_from([b"101", b"100", b"200", b"404", b"999", b"abc"]),
    header_lines,
    st.binary(max_size=10),
)


@budget(200)
@given(st.binary(max_size=200))
@example(b"")
@example(frame(OP_CLOSE, b"\x03\xe8") + frame(OP_PING, b"after close"))
def test_random_bytes(data: bytes) -> None:
    check(data)


@budget(200)
@given(st.lists(frames, max_size=6).map(b"".join))
@example(frame(OP_TEXT, ("[" * 20000 + "]" * 20000).encode()))  # nesting beyond msgspec's reach
def test_frame_sequences(data: bytes) -> None:
    check(data)


@budget(100)
@given(handshakes)
@example(b"HTTP/1.1 101 Switching Protocols\r\nConnection: \xff\r\n\r\n")
def test_handshake_responses(data: bytes) -> None:
    check(data)


class _BrokenCore:
    """A working core behind a wrapper that breaks it on purpose: with ``raising``, any received
    bytes raise; otherwise every request failure is reported twice. (The wrapper breaks it from
    outside: the compiled build's classes cannot be patched.)"""

    def __init__(self, core: Any, *, raising: bool) -> None:
        self._core = core
        self._raising = raising

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    def receive_data(self, data: bytes, now: float) -> None:
        if self._raising and data:
            raise KeyError("a reply")
        self._core.receive_data(data, now)

    def events(self) -> list[Event]:
        events: list[Event] = self._core.events()
        if self._raising:
            return events
        return events + [event for event in events if isinstance(event, RequestFailed)]


@pytest.mark.parametrize("raising", [True, False])
def test_check_finds_a_broken_core(monkeypatch: pytest.MonkeyPatch, raising: bool) -> None:
    """The property is not vacuous: a core that lets an exception escape, or answers a request
    twice, fails it."""
    opened_client = fuzz_client.opened_client

    def broken(window: int = 2) -> tuple[_BrokenCore, list[int]]:
        client, ids = opened_client(window)
        return _BrokenCore(client, raising=raising), ids

    monkeypatch.setattr(fuzz_client, "opened_client", broken)
    if raising:
        with pytest.raises(KeyError):
            check(frame(OP_TEXT, b'{"KV_GET_RSP":{"keys":{},"st":1}}'))
    else:
        with pytest.raises(AssertionError, match="resolved twice"):
            check(b"")
