"""Two edges of the sans-IO server connection that the test kit's servers reach: a connection
that never finishes its upgrade is dropped at the idle timeout (its deadline moves on after the
ping time instead of staying due), and a message whose reply is overtaken by the client's close
frame in the same read gets no reply (wsproto allows none) while the close is still echoed."""

from __future__ import annotations

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from ndb_server.connection import Outcome, ServerConnection
from ndb_server.engine import Engine


def connection() -> ServerConnection:
    engine = Engine(clock=lambda: 0.0)
    return ServerConnection(
        engine.handle_text,
        engine.handle_binary,
        max_payload=1024,
        now=0.0,
        idle_ping=10.0,
        idle_timeout=20.0,
    )


def test_a_connection_that_never_upgrades_is_dropped_at_the_idle_timeout() -> None:
    conn = connection()
    conn.receive_data(b"GET / HTTP/1.1\r\n", 0.0)  # an upgrade request that never ends
    assert conn.next_deadline() == 10.0
    conn.handle_timeout(10.0)  # nothing to ping with yet
    assert conn.outcome is Outcome.KEEP
    assert conn.data_to_send() == b""
    assert conn.next_deadline() == 20.0
    conn.handle_timeout(20.0)
    assert conn.outcome is Outcome.DROP


def test_a_close_frame_in_the_same_read_overtakes_the_reply() -> None:
    conn = connection()
    client = WSConnection(ConnectionType.CLIENT)
    conn.receive_data(client.send(Request(host="db", target="/")), 0.0)
    client.receive_data(conn.data_to_send())
    assert [type(e) for e in client.events()] == [AcceptConnection]
    data = client.send(TextMessage('{"KV_SET":{"keys":{"a":1}}}'))
    data += client.send(CloseConnection(code=1000))
    conn.receive_data(data, 1.0)
    client.receive_data(conn.data_to_send())
    assert [type(e) for e in client.events()] == [CloseConnection]
    assert conn.outcome is Outcome.CLOSE
