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

import ndb_transports._options as ndb_options
import ndb_transports.sync as ndb_sync
from ndb_proto.errors import ClientClosedError, ConnectionLostError
from ndb_proto.reconnect import Backoff
from ndb_server import MemoryServer
from ndb_server.thread import ServerThread
from tests.transports.proxy import C2S, OP_CLOSE, OP_PONG, Proxy
from tests.transports.waiting import WatchedClock, until


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


def start_setting(client: ndb_sync.NdbClient, name: str, outcome: dict[str, Any]) -> Any:
    """A thread called ``name`` setting a key: its outcome ("answered", or the
    ConnectionLostError) lands in ``outcome[name]``. Returns the thread, started."""

    def run() -> None:
        try:
            client.kv_set({name: 1})
            outcome[name] = "answered"
        except ConnectionLostError as exc:
            outcome[name] = exc

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_socket_dropped_while_read_without_the_lock_is_closed_by_its_reader(
    request: pytest.FixtureRequest, tls: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R waits for its reply without the lock; W's write fails, which drops the connection.
    The socket R waits on stays open (its descriptor cannot be reused under R) until R looks
    again and closes it; R's request fails with its outcome unknown; the client reconnects.
    A TLS socket is waited for without the lock too, so the same holds for it."""
    proxy: Proxy = request.getfixturevalue("tls_proxy" if tls else "proxy")
    options = {"ssl": request.getfixturevalue("client_ssl_context")} if tls else {}
    with ndb_sync.NdbClient(timeout=10, **options) as client:
        assert client.open(proxy.url)
        client.kv_set({"a": 1})
        old = client._sock
        assert old is not None
        entered, release = hold_the_reader(monkeypatch, "R")
        proxy.stall()  # R's reply must not come before W's write fails
        outcome: dict[str, Any] = {}
        r = start_setting(client, "R", outcome)
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


def test_a_socket_dropped_while_written_without_the_lock_stays_open_until_its_writer_is_done(
    ndb_server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W writes its request without the lock; meanwhile R reconnects, which drops W's socket
    and opens a new one. W's socket must stay open until W is done with it: closed, its
    descriptor could be reused by the new connection, and W's write (whose descriptor the
    system call reads without the lock) would put the old request on the new connection, a
    silent resend. Once W is done, it closes the socket; its request fails with its outcome
    unknown, and the new connection works."""
    entered, release = threading.Event(), threading.Event()
    real_write = ndb_sync._write
    held: list[socket.socket] = []

    def write(sock: socket.socket, data: bytes) -> None:
        if threading.current_thread().name == "W" and not held:
            held.append(sock)
            entered.set()
            release.wait(10)
        real_write(sock, data)

    with ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(ndb_server.url)
        monkeypatch.setattr(ndb_sync, "_write", write)
        outcome: dict[str, Any] = {}
        w = start_setting(client, "W", outcome)
        assert entered.wait(10)
        (old,) = held
        r = threading.Thread(target=client.reconnect, name="R")
        r.start()
        assert until(lambda: client._sock is not None and client._sock is not old)
        assert old.fileno() >= 0  # dropped, but open while W may still write it
        release.set()
        w.join(10)
        r.join(10)
        assert not w.is_alive() and not r.is_alive()
        assert old.fileno() < 0  # closed by W, the last to use it
        assert isinstance(outcome["W"], ConnectionLostError)
        assert outcome["W"].outcome_unknown is True
        assert client.kv_set({"a": 1}) is None
        assert client.kv_get(key="a") == 1


class OwnedLock:
    """The client's lock, telling which thread holds it."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.owner: threading.Thread | None = None

    def __enter__(self) -> bool:
        entered = bool(self.lock.__enter__())
        self.owner = threading.current_thread()
        return entered

    def __exit__(self, *exc: object) -> None:
        self.owner = None
        self.lock.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lock, name)


def test_a_write_going_on_after_a_reconnection_to_tls_is_written_under_the_lock(
    proxy: Proxy,
    tls_proxy: Proxy,
    client_ssl_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pool of a ws:// and a wss:// server. W writes to the plain connection without the
    lock; meanwhile the plain server goes away and the client reconnects to the TLS one. The
    bytes W finds queued when its write ends (the new connection's handshake) are for a TLS
    socket: W writes them holding the lock (OpenSSL does not support a write beside a read on
    one connection), never without it."""
    # Without ssl=, wss:// verifies with the default context: here, one trusting the test CA.
    monkeypatch.setattr(ndb_options, "_default_context", lambda: client_ssl_context)
    backoff = Backoff(initial=0.01, maximum=0.01)
    with ndb_sync.NdbClient(timeout=10, backoff=backoff) as client:
        assert client.connect_pool([proxy.url, tls_proxy.url])
        assert not client._tls
        lock = OwnedLock(client._lock)
        monkeypatch.setattr(client, "_lock", lock)
        monkeypatch.setattr(client._role, "_lock", lock)
        entered, release = threading.Event(), threading.Event()
        real_write = ndb_sync._write
        writes: list[tuple[bool, bool]] = []  # W's: (to a TLS socket, holding the lock)

        def write(sock: socket.socket, data: bytes) -> None:
            me = threading.current_thread()
            if me.name == "W":
                writes.append((isinstance(sock, ssl.SSLSocket), lock.owner is me))
                if len(writes) == 1:
                    entered.set()
                    release.wait(10)
            real_write(sock, data)

        monkeypatch.setattr(ndb_sync, "_write", write)
        outcome: dict[str, Any] = {}
        w = start_setting(client, "W", outcome)
        assert entered.wait(10)
        proxy.stop()
        r = threading.Thread(target=client.reconnect, name="R")
        r.start()
        assert until(lambda: client._tls)
        release.set()
        w.join(10)
        r.join(10)
        assert not w.is_alive() and not r.is_alive()
        assert writes[0] == (False, False)  # its own request, to the plain socket
        assert (True, True) in writes  # the handshake, to the TLS socket, under the lock
        assert all(held for tls, held in writes if tls)
        assert client.kv_set({"a": 1}) is None
        assert client.kv_get(key="a") == 1


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


class InterruptingExit:
    """The client's lock, whose release at the end of the block in which a reading thread
    marked its socket as being read raises `Interrupt` (once): an interrupt arriving in the
    step just after that block, before the wait."""

    def __init__(self, client: ndb_sync.NdbClient) -> None:
        self.client = client
        self.lock = client._lock
        self.armed = True

    def __enter__(self) -> bool:
        return bool(self.lock.__enter__())

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(*exc)
        if self.armed and self.client._reading_sock is not None and not any(exc):
            self.armed = False
            raise Interrupt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lock, name)


@pytest.mark.parametrize("where", ["in the wait", "before the wait"])
def test_an_interrupt_while_waiting_without_the_lock_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The reading thread is interrupted as it waits for its reply without the lock (or in
    the step before): the socket is no longer marked as being read (a later close closes it),
    the role is free, and the connection stays in step."""
    with MemoryServer() as server, ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(server.url)
        if where == "in the wait":
            real = ndb_sync._Poller.readable
            armed = [True]

            def interrupted(self: ndb_sync._Poller, timeout: float | None) -> bool:
                if armed[0] and timeout != 0:  # the wait for a reply, not the look before writing
                    armed[0] = False
                    raise Interrupt
                return real(self, timeout)

            monkeypatch.setattr(ndb_sync._Poller, "readable", interrupted)
        else:
            monkeypatch.setattr(client, "_lock", InterruptingExit(client))
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


def test_a_close_the_reading_thread_queues_is_sent_before_the_socket_goes(
    ndb_server: ServerThread, proxy: Proxy
) -> None:
    """A reply that is not JSON ends the connection with a close frame (1002): the reading
    thread writes it before the connection's socket is dropped with the loss."""
    with ndb_sync.NdbClient(timeout=10, auto_reconnect=False) as client:
        assert client.open(proxy.url)
        client.kv_set({"a": 1})
        ndb_server.answer_next("not json at all")
        with pytest.raises(ConnectionLostError):
            client.kv_get(key="a")
        assert until(lambda: proxy.frames_of(C2S, OP_CLOSE))
        (close,) = proxy.frames_of(C2S, OP_CLOSE)
        assert int.from_bytes(close.payload[:2], "big") == 1002


class InterruptingLock:
    """The client's lock, whose next acquisition by the reading thread raises `Interrupt` once
    armed: an interrupt arriving just after a read returned bytes, before they reach the core."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.armed = False

    def __enter__(self) -> bool:
        if self.armed and threading.current_thread() is threading.main_thread():
            self.armed = False
            raise Interrupt
        return bool(self.lock.__enter__())

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lock, name)


def test_an_interrupt_between_a_read_and_the_core_gives_the_connection_up(
    ndb_server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes a lock-free read returned never reach the core: the connection is given up
    (its request fails), so the next request gets its own reply, not one shifted by one."""
    with ndb_sync.NdbClient(timeout=5) as client, ndb_sync.NdbClient(timeout=5) as other:
        assert client.open(ndb_server.url) and other.open(ndb_server.url)
        lock = InterruptingLock(client._lock)
        monkeypatch.setattr(client, "_lock", lock)
        real_recv = socket.socket.recv

        def recv(sock: socket.socket, size: int, *args: Any) -> bytes:
            data = real_recv(sock, size, *args)
            if data and sock is client._sock:
                lock.armed = True
            return data

        monkeypatch.setattr(socket.socket, "recv", recv)
        with pytest.raises(Interrupt):
            client.kv_count()
        monkeypatch.undo()
        other.kv_set({"x1": 1, "x2": 2, "x3": 3})
        assert client.kv_count() == 3


def test_threads_waiting_without_a_timeout_sleep_through_the_reconnect_backoff() -> None:
    """The server is gone; requests without a timeout wait while the client reconnects with a
    backoff: the thread that leads sleeps until the next attempt instead of asking the core
    for its plan in a loop. The clock moves only when the test moves it, and only once a
    requesting thread sleeps until a later time: a leader asking in a loop would ask again
    and again at one instant (and never sleep). Closing wakes every one of them, the leader
    asleep in the backoff too (on this clock, nothing else would)."""
    clock = WatchedClock()
    server = ServerThread().__enter__()
    backoff = Backoff(initial=3.0, maximum=3.0, jitter=0.0)
    client = ndb_sync.NdbClient(timeout=None, backoff=backoff, clock=clock)
    names = tuple(f"T{i}" for i in range(4))
    threads: list[threading.Thread] = []
    try:
        assert client.open(server.url)
        server.stop()
        proto = client._proto
        assert proto is not None
        real = proto.next_connect
        asked: list[float] = []

        def next_connect(now: float) -> Any:
            asked.append(now)
            return real(now)

        proto.next_connect = next_connect  # type: ignore[method-assign]
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                client.kv_count()
            except ConnectionLostError as exc:
                outcome.append(exc)

        threads.extend(threading.Thread(target=call, name=name) for name in names)
        for thread in threads:
            thread.start()
        for _ in range(7):  # past two attempts after the first
            assert until(lambda: clock.sleeps_until_later(names))
            now = clock.current_time()
            assert 1 <= asked.count(now) <= 3  # looked once (twice around an attempt), then slept
            clock.advance(1.0)
        assert until(lambda: clock.sleeps_until_later(names))
        assert max(asked) == clock.current_time() == 7.0
    finally:
        client.close()
        for thread in threads:
            thread.join(10)
    assert len(outcome) == 4  # closing fails every waiting request


def test_closing_wakes_a_reconnect_asleep_in_the_backoff() -> None:
    clock = WatchedClock()
    server = ServerThread().__enter__()
    client = ndb_sync.NdbClient(backoff=Backoff(initial=3.0, maximum=3.0), clock=clock)
    outcome: list[BaseException] = []

    def reconnect() -> None:
        try:
            client.reconnect()
        except ClientClosedError as exc:
            outcome.append(exc)

    r = threading.Thread(target=reconnect, name="R")
    try:
        assert client.open(server.url)
        server.stop()
        r.start()
        assert until(lambda: clock.sleeps_until_later(("R",)))
    finally:
        client.close()
        r.join(10)
    assert not r.is_alive()
    assert len(outcome) == 1
