"""The embedded server over real sockets answers every recorded scenario exactly as NemesisDB
0.7.4 did (arrays compared as multisets where the recording says unordered, ``$int`` matching any
integer), including dropped connections."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ndb_server.server import NdbServer
from ndb_server.thread import ServerThread
from tests.server.wsclient import Dropped, RawClient
from tests.vectors import (
    Bindings,
    Scenario,
    bind_new_tokens,
    matches,
    oversize_text,
    scenarios,
    server_settings,
    substitute,
)

SWEEP = 0.25
"""The expiry sweep runs every 5 s on NemesisDB; the tests run it faster and sleep less."""


def _expect(client: RawClient, expected: Any, bindings: Bindings, unordered: bool) -> None:
    if expected == {"$closed": True}:
        with pytest.raises(Dropped):
            client.recv_text()
        return
    actual = client.recv_json()
    bind_new_tokens(expected, actual, bindings)
    assert matches(expected, actual, bindings, unordered), (expected, actual)


def _run(scenario: Scenario, url: str) -> None:
    bindings = Bindings()
    client = RawClient(url)
    try:
        for step in scenario.steps:
            if "sleep" in step:
                # Durations in these scenarios are 1 s; with a 0.25 s sweep the session has
                # certainly expired (and been swept) after 1.75 s.
                time.sleep(1 + 3 * SWEEP)
                continue
            if "send_many" in step:
                for obj in step["send_many"]:
                    client.send_json(substitute(obj, bindings))
                for expected in step["recv_many"]:
                    _expect(client, expected, bindings, scenario.unordered_arrays)
                continue
            if "send" in step:
                client.send_json(substitute(step["send"], bindings))
            elif "send_text" in step:
                client.send_text(step["send_text"])
            elif "send_binary" in step:
                client.send_binary(bytes.fromhex(step["send_binary"]))
            else:
                text = oversize_text(step["send_oversize"])
                assert len(text.encode()) == step["send_oversize"]
                client.send_text(text)
            _expect(client, step["recv"], bindings, scenario.unordered_arrays)
            if step["recv"] == {"$closed": True}:
                client.close()
                client = RawClient(url)
    finally:
        client.close()


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s.name)
def test_recorded_scenario_over_the_wire(scenario: Scenario, tmp_path: Path) -> None:
    settings = server_settings(scenario.server)
    options: dict[str, Any] = {"max_payload": settings["maxPayload"], "sweep_interval": SWEEP}
    if settings["persist"]:
        options["persist_dir"] = tmp_path
    with ServerThread(**options) as server:
        _run(scenario, server.url)


def test_invalid_utf8_drops_the_connection_without_a_close_frame(ndb_server: ServerThread) -> None:
    with RawClient(ndb_server.url) as client:
        # FIN + TEXT, masked, 2-byte payload, all-zero mask (XOR leaves the payload as is).
        client.send_raw(bytes([0x81, 0x82, 0, 0, 0, 0]) + b"\xff\xfe")
        with pytest.raises(Dropped):
            client.recv_text()


def test_fragmented_request_is_reassembled(ndb_server: ServerThread) -> None:
    from wsproto.events import TextMessage

    with RawClient(ndb_server.url) as client:
        client.send_raw(client.ws.send(TextMessage('{"KV_SET":{"keys":', message_finished=False)))
        client.send_raw(client.ws.send(TextMessage('{"a":1}}}', message_finished=True)))
        assert client.recv_json() == {"KV_SET_RSP": {"st": 1}}


def test_close_frame_is_echoed_with_code_and_reason(ndb_server: ServerThread) -> None:
    from wsproto.events import CloseConnection

    from tests.server.wsclient import ClosedByServer

    with RawClient(ndb_server.url) as client:
        client.send_raw(client.ws.send(CloseConnection(4001, "bye")))
        with pytest.raises(ClosedByServer) as info:
            client.recv_text()
        assert info.value.code == 4001


def test_plain_http_get_gets_404(ndb_server: ServerThread) -> None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(ndb_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 404")


def test_any_path_and_first_subprotocol_are_accepted(ndb_server: ServerThread) -> None:
    import socket
    from urllib.parse import urlsplit

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    parts = urlsplit(ndb_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        ws = WSConnection(ConnectionType.CLIENT)
        sock.sendall(
            ws.send(Request(host="x", target="/anything?x=1", subprotocols=["foo", "bar"]))
        )
        events: list[Any] = []
        while not events:
            ws.receive_data(sock.recv(4096))
            events = list(ws.events())
        assert isinstance(events[0], AcceptConnection)
        assert events[0].subprotocol == "foo"


def test_silent_client_is_pinged_then_dropped(ndb_server_factory: Any) -> None:
    server = ndb_server_factory(idle_ping=0.2, idle_timeout=0.6)
    with RawClient(server.url) as client:
        client.ws.receive_data(client.sock.recv(100))  # the ping, not answered
        from wsproto.events import Ping

        assert any(isinstance(e, Ping) for e in client.ws.events())
        client.sock.settimeout(5)
        assert client.sock.recv(100) == b""  # dropped, no close frame


def test_server_stop_sends_close_1000(ndb_server_factory: Any) -> None:
    from tests.server.wsclient import ClosedByServer

    server = ndb_server_factory()
    with RawClient(server.url) as client:
        server.stop()
        with pytest.raises(ClosedByServer) as info:
            client.recv_text()
        assert info.value.code == 1000


def test_replies_are_dropped_past_the_backpressure_limit_and_the_connection_lives_on(
    ndb_server_factory: Any,
) -> None:
    """Like NemesisDB (uWebSockets, maxBackpressure 128 KiB, no close): with a client that does
    not read, replies beyond the limit are silently lost; later ones arrive again."""
    import socket

    server = ndb_server_factory(max_payload=8192)
    with RawClient(server.url) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.send_json({"KV_SET": {"keys": {"big": "x" * 7000}}})
        assert client.recv_json() == {"KV_SET_RSP": {"st": 1}}
        sent = 600  # 4 MB of replies, far more than the socket buffers and the limit hold
        for _ in range(sent):
            client.send_json({"KV_GET": {"keys": ["big"]}})
        time.sleep(1.0)
        client.send_json({"KV_COUNT": {}})
        received = 0
        while "KV_COUNT_RSP" not in (reply := client.recv_json()):
            assert reply["KV_GET_RSP"]["keys"]["big"] == "x" * 7000
            received += 1
        assert 0 < received < sent
        client.send_json({"SV_INFO": {}})
        assert client.recv_json()["SV_INFO_RSP"]["st"] == 1


def test_stop_closes_every_socket_even_one_whose_client_does_not_read() -> None:
    """A stop ends every connection for good: one whose unread replies fill the buffers (so its
    close frame cannot be flushed) is cut off rather than left open when the server's loop
    closes (it was then closed only by the garbage collector, with a ResourceWarning)."""
    import socket

    server = ServerThread(max_payload=8192)
    server.start()
    with RawClient(server.url) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.send_json({"KV_SET": {"keys": {"big": "x" * 7000}}})
        assert client.recv_json() == {"KV_SET_RSP": {"st": 1}}
        until_buffered = time.monotonic() + 30
        while server.call(unsent_bytes, server.server) == 0:  # the kernel's buffers are full
            assert time.monotonic() < until_buffered
            for _ in range(16):  # about 112 KB of replies, under the backpressure limit
                client.send_json({"KV_GET": {"keys": ["big"]}})
            time.sleep(0.005)
        sockets = server.call(
            lambda: [c.transport.get_extra_info("socket") for c in server.server.connections]
        )
        server.stop()
        assert len(sockets) == 1
        assert sockets[0].fileno() == -1  # closed


def unsent_bytes(server: NdbServer) -> int:
    """Bytes the server's connections hold because their clients do not read."""
    return sum(c.transport.get_write_buffer_size() for c in server.connections if c.transport)
