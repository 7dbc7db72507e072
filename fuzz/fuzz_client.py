"""Fuzz the ndb client core (``ndb_proto.ClientProtocol``) with arbitrary bytes from the server.

The property is `check(data)`: whatever the server sends, the core turns it into events. No
exception may escape ``receive_data``, ``handle_timeout``, ``events``, ``data_to_send`` or
``close``, and only the documented outcomes may happen:

* every request gets at most one ``ReplyReceived``/``RequestFailed`` (exactly one once the client
  is closed), only requests that were written get replies, and request errors are ``NdbError``s;
* ``ConnectionLost`` comes at most once (nothing reconnects here), with an ``NdbError``; after it
  no request gets a reply; ``Closed`` comes once, last; ``UndecodableData`` carries bytes;
* with every request already written, one chunk or one byte at a time ends every request the
  same way. (With a request still queued it need not: a reply that frees the window gets the
  queued request written at once when bytes trickle in, but only after the whole chunk
  otherwise, so a later broken frame finds it written in one case and not in the other.)

The bytes are tried in three places: as frames after the handshake of an open connection (three
requests in flight; or two in flight and one queued), with a deadline, keepalive pings and a
1 KiB incoming limit; and as the server's answer to the upgrade request.

Run with atheris (``pip install atheris``)::

    python fuzz/fuzz_client.py -atheris_runs=100000

Without atheris the module still imports: ``tests/proto/test_fuzz_bounded.py`` runs `check` under
hypothesis with a bounded budget.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # running as ``python fuzz/fuzz_client.py`` from a checkout
    sys.path.insert(0, str(ROOT))

from wsproto import WSConnection  # noqa: E402
from wsproto.connection import ConnectionType  # noqa: E402
from wsproto.events import AcceptConnection  # noqa: E402

from ndb_proto import calls  # noqa: E402
from ndb_proto.client import ClientProtocol, State  # noqa: E402
from ndb_proto.errors import NdbError  # noqa: E402
from ndb_proto.events import (  # noqa: E402
    Closed,
    Connected,
    ConnectionLost,
    Event,
    ReplyReceived,
    RequestFailed,
    UndecodableData,
)

URI = "ws://fuzz.example:1987/"
NOW = 1.0


def _requests(client: ClientProtocol) -> list[int]:
    # The GET last: nothing is written behind a reply of unbounded size.
    return [
        client.submit(calls.kv_count()),
        client.submit(calls.sh_create()),
        client.submit(calls.kv_get(key="a"), deadline=50.0),  # queued: the window is 2
    ]


def opened_client(window: int = 2) -> tuple[ClientProtocol, list[int]]:
    """An open client with three requests: all in flight, or (window 2) one of them queued."""
    client = ClientProtocol(
        URI,
        max_in_flight=window,
        max_incoming_message_size=1024,
        ping_interval=10.0,
        reply_grace=5.0,
    )
    plan = client.next_connect(0.0)
    assert plan is not None
    client.connection_made(plan.endpoint, 0.0)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.data_to_send())
    for _ in server.events():
        client.receive_data(server.send(AcceptConnection()), 0.0)
    (connected,) = client.events()
    assert isinstance(connected, Connected)
    ids = _requests(client)
    client.data_to_send()
    return client, ids


def connecting_client() -> tuple[ClientProtocol, list[int]]:
    """A client waiting for the server's answer to its upgrade request (requests queued)."""
    client = ClientProtocol(URI, max_in_flight=2, max_incoming_message_size=1024)
    plan = client.next_connect(0.0)
    assert plan is not None
    client.connection_made(plan.endpoint, 0.0)
    client.data_to_send()
    return client, _requests(client)


def _outcome(event: Event) -> tuple[Any, ...]:
    if isinstance(event, ReplyReceived):
        return ("reply", repr(event.value))
    assert isinstance(event, RequestFailed)
    error = event.error
    return ("failed", type(error).__name__, getattr(error, "status", None))


def run(
    client: ClientProtocol, ids: list[int], chunks: list[bytes], *, open_: bool
) -> dict[int, Any]:
    """Feed the chunks, then let time pass, end the stream and close; check every event.
    Returns how each request ended."""
    events: list[Event] = []
    for chunk in chunks:
        client.receive_data(chunk, NOW)
        events += client.events()
        client.data_to_send()
    for now in (NOW + 10.0, NOW + 60.0):  # a keepalive ping, then deadlines and grace
        client.next_deadline()
        client.handle_timeout(now)
        events += client.events()
        client.data_to_send()
    client.receive_data(b"", NOW + 61.0)
    events += client.events()
    client.close(NOW + 62.0)
    events += client.events()
    client.data_to_send()
    assert client.state is State.CLOSED and client.pending == 0

    outcomes: dict[int, Any] = {}
    lost = False
    for event in events:
        if isinstance(event, (ReplyReceived, RequestFailed)):
            assert event.request_id in ids, event
            assert event.request_id not in outcomes, f"request resolved twice: {event}"
            if isinstance(event, ReplyReceived):
                assert not lost, "a reply after the connection was lost"
                # The upgrade cannot succeed by chance (the accept token hashes a random key),
                # so a client still connecting never gets a reply.
                assert open_, "a reply before the handshake completed"
            else:
                assert isinstance(event.error, NdbError), repr(event.error)
            outcomes[event.request_id] = _outcome(event)
        elif isinstance(event, ConnectionLost):
            assert not lost, "ConnectionLost twice without a reconnect"
            assert isinstance(event.error, NdbError), repr(event.error)
            lost = True
        elif isinstance(event, UndecodableData):
            assert isinstance(event.data, bytes) and isinstance(event.reason, str)
        elif isinstance(event, Connected):
            assert not lost and not outcomes
        else:
            assert isinstance(event, Closed), event
            assert event is events[-1]
    assert isinstance(events[-1], Closed)
    assert sorted(outcomes) == sorted(ids), "every request ends exactly once"
    return outcomes


def check(data: bytes) -> None:
    """The fuzz property (see the module docstring)."""
    one = [data] if data else []
    split = [data[i : i + 1] for i in range(len(data))]
    whole = run(*opened_client(window=3), one, open_=True)
    assert run(*opened_client(window=3), split, open_=True) == whole
    run(*opened_client(window=2), one, open_=True)
    run(*opened_client(window=2), split, open_=True)
    whole = run(*connecting_client(), one, open_=False)
    assert run(*connecting_client(), split, open_=False) == whole


def main() -> None:  # pragma: no cover - needs atheris
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    main()
