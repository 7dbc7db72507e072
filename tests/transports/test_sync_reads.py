"""The blocking client's read path: the reading thread waits for and reads a plain socket without
the lock, so a socket dropped meanwhile (by a thread whose write failed) must stay open until
that thread is done with it, and then be closed by it; an interrupt in that wait must leave
nothing behind. A TLS socket that must read before it can write waits for bytes to read rather
than spin."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Any

import pytest

import ndb_transports.sync as ndb_sync
from ndb_proto.errors import ConnectionLostError
from ndb_server import MemoryServer
from tests.transports.proxy import C2S, OP_PONG, Proxy


class Interrupt(BaseException):
    """Stands for a KeyboardInterrupt arriving in one thread."""


def hold_the_reader(monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[Any, Any]:
    """The thread called ``name`` stops in its first wait for the socket until released;
    returns (entered, release) events."""
    entered, release = threading.Event(), threading.Event()
    real = ndb_sync._Poller.readable

    def readable(self: ndb_sync._Poller, timeout: float | None) -> bool:
        if threading.current_thread().name == name and timeout != 0 and not entered.is_set():
            entered.set()
            release.wait(10)
        return real(self, timeout)

    monkeypatch.setattr(ndb_sync._Poller, "readable", readable)
    return entered, release


def test_a_socket_dropped_while_read_without_the_lock_is_closed_by_its_reader(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R waits for its reply without the lock; W's write fails, which drops the connection.
    The socket R waits on stays open (its descriptor cannot be reused under R) until R looks
    again and closes it; R's request fails with its outcome unknown; the client reconnects."""
    with ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(proxy.url)
        client.kv_set({"a": 1})
        old = client._sock
        assert old is not None
        entered, release = hold_the_reader(monkeypatch, "R")
        proxy.stall()  # R's reply must not come before W's write fails
        outcome: dict[str, Any] = {}

        def reader() -> None:
            try:
                client.kv_set({"r": 1})
                outcome["R"] = "answered"
            except ConnectionLostError as exc:
                outcome["R"] = exc

        r = threading.Thread(target=reader, name="R")
        r.start()
        assert entered.wait(10)

        def broken_write(sock: Any, data: bytes) -> None:
            raise ConnectionResetError("the peer reset the connection")

        monkeypatch.setattr(ndb_sync, "_write", broken_write)
        with pytest.raises(ConnectionLostError):
            client.kv_set({"w": 1})
        assert client._sock is not old  # dropped...
        assert old.fileno() >= 0  # ...but left open for R
        monkeypatch.undo()  # writes work again, and R's wait is no longer held
        release.set()
        r.join(10)
        assert not r.is_alive()
        assert old.fileno() < 0  # R closed it
        assert isinstance(outcome["R"], ConnectionLostError)
        assert outcome["R"].outcome_unknown is True
        proxy.resume()
        assert client.kv_get(key="a") == 1  # on a new connection
        assert len(proxy.accepted) == 2


def until(predicate: Any, timeout: float = 10.0) -> bool:
    tick = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        tick.wait(0.01)
    return bool(predicate())


def test_the_reading_thread_answers_a_ping_while_its_reply_is_awaited(proxy: Proxy) -> None:
    """The pong the core queues while the reading thread feeds it is written by that thread
    (without the lock) at once, not left for a later request or the keepalive check."""
    with ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(proxy.url)
        client.kv_set({"a": 1})
        sent = len(proxy.texts(C2S))
        proxy.stall()
        got: dict[str, Any] = {}
        reader = threading.Thread(target=lambda: got.setdefault("a", client.kv_get(key="a")))
        reader.start()
        assert until(lambda: len(proxy.texts(C2S)) > sent)  # its request left; it waits
        assert proxy.inject(b"\x89\x04ping") == 1
        assert until(lambda: bool(proxy.frames_of(C2S, OP_PONG)))
        assert "a" not in got  # answered while the reply was still awaited
        assert proxy.frames_of(C2S, OP_PONG)[0].payload == b"ping"
        proxy.resume()
        reader.join(10)
        assert got == {"a": 1}
        assert len(proxy.accepted) == 1


def test_an_interrupt_while_waiting_without_the_lock_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with MemoryServer() as server, ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(server.url)
        real = ndb_sync._Poller.readable
        armed = [True]

        def interrupted(self: ndb_sync._Poller, timeout: float | None) -> bool:
            if armed[0] and timeout != 0:  # the wait for a reply, not the look before writing
                armed[0] = False
                raise Interrupt
            return real(self, timeout)

        monkeypatch.setattr(ndb_sync._Poller, "readable", interrupted)
        with pytest.raises(Interrupt):
            client.kv_set({"x": 1})
        assert client._reading_sock is None
        assert not client._role.held
        # The abandoned request's reply is read and dropped: later ones get their own.
        assert client.kv_get(key="x") == 1
        assert client.kv_count() == 1
        sock = client._sock
        assert sock is not None
        client.close()
        assert sock.fileno() < 0  # nobody is reading it any more: closed with the connection


class WantsToReadFirst:
    """A TLS socket's stand-in whose send needs bytes from the peer first (as during a key
    update): `ssl.SSLWantReadError` until its socket is readable. Counts the sends tried."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: Any) -> int:
        self.sends += 1
        if self.sends > 20:
            raise AssertionError("send retried in a loop while the socket had nothing to read")
        if not select.select([self.sock], [], [], 0)[0]:
            raise ssl.SSLWantReadError("the peer's bytes are needed first")
        return len(data)


def test_a_tls_write_that_must_read_first_waits_for_bytes_to_read() -> None:
    mine, peer = socket.socketpair()
    with mine, peer:
        fake = WantsToReadFirst(mine)
        timer = threading.Timer(0.05, peer.send, args=(b"x",))
        timer.start()
        try:
            ndb_sync._write(fake, b"request")  # type: ignore[arg-type]
        finally:
            timer.cancel()
        assert fake.sends == 2  # once before the peer's bytes came, once after


def test_a_tls_write_that_must_read_first_gives_up_after_the_write_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ndb_sync, "WRITE_TIMEOUT", 0.01)
    mine, peer = socket.socketpair()
    with mine, peer:
        fake = WantsToReadFirst(mine)
        with pytest.raises(TimeoutError):
            ndb_sync._write(fake, b"request")  # type: ignore[arg-type]
        assert fake.sends == 1
