"""The blocking client when a thread is interrupted at a bad moment (a KeyboardInterrupt in the
middle of a write, or just as the reader role is handed to it), and `wait_closed` on a client
that is not closing. Each of these once lost a request, a hand-off or the socket: replies must
still reach the right caller and nobody may wait for a reader that will never come."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import ndb_transports._reader_role as reader_role
import ndb_transports.sync as ndb_sync
from ndb_proto.errors import ClientClosedError, ConnectionLostError
from ndb_server import MemoryServer
from tests.transports.waiting import until


class Interrupt(BaseException):
    """Stands for a KeyboardInterrupt arriving in one thread."""


@pytest.fixture
def server() -> Iterator[MemoryServer]:
    with MemoryServer() as running:
        yield running


def interrupt_next_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next write of any blocking client is interrupted before it sends anything."""
    real_write = ndb_sync._write
    armed = [True]

    def write_once_interrupted(sock: Any, data: bytes) -> None:
        if armed[0]:
            armed[0] = False
            raise Interrupt
        real_write(sock, data)

    monkeypatch.setattr(ndb_sync, "_write", write_once_interrupted)


def interrupt_just_after_the_next_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next thread to claim the lock-free write of the core's bytes is interrupted in the
    step after (it holds the claim and the bytes, and has written nothing)."""
    real_claim = ndb_sync.NdbClient._claim_write
    armed = [True]

    def claim_then_interrupted(self: ndb_sync.NdbClient, proto: Any) -> Any:
        claimed = real_claim(self, proto)
        if claimed is not None and armed[0]:
            armed[0] = False
            raise Interrupt
        return claimed

    monkeypatch.setattr(ndb_sync.NdbClient, "_claim_write", claim_then_interrupted)


@pytest.mark.parametrize("where", ["in the write", "just after claiming it"])
def test_an_interrupted_write_fails_the_connection_and_later_requests_get_their_own_replies(
    server: MemoryServer, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Interrupted in its write, or before it (just after it took the bytes and the right to
    write them): the connection is given up, and the writing is not left claimed by a thread
    that will never write (every later request would wait for it)."""
    with ndb_sync.NdbClient(timeout=10.0) as client:
        assert client.open(server.url)
        client.kv_set({"a": 1, "b": 2})
        if where == "in the write":
            interrupt_next_write(monkeypatch)
        else:
            interrupt_just_after_the_next_claim(monkeypatch)
        with pytest.raises(Interrupt):
            client.kv_set({"x": 1})  # taken from the core, never written
        # The connection was given up (its bytes were lost), so the next requests are not
        # matched against a reply that will never come: each gets its own.
        assert client.kv_set({"y": 2}) is None
        assert client.kv_get(("a", "y")) == {"a": 1, "y": 2}
        assert client.kv_contains(("x",)) == []


def test_an_interrupted_write_fails_every_request_it_carried(
    server: MemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ndb_sync.NdbClient(timeout=10.0, auto_reconnect=False) as client:
        assert client.open(server.url)
        interrupt_next_write(monkeypatch)
        with client.pipeline() as pipe:
            pipe.kv_set({"p": 1}).kv_count()
            with pytest.raises(Interrupt):
                pipe.execute()
        # Given up at once: nothing waits for the replies of bytes that may never have left.
        assert not client.is_connected()
        with pytest.raises(ConnectionLostError) as info:
            client.kv_count()
        assert info.value.outcome_unknown is False


def test_wait_closed_on_an_open_client_leaves_the_connection_alone(server: MemoryServer) -> None:
    with ndb_sync.NdbClient(timeout=5.0) as client:
        assert client.open(server.url)
        client.wait_closed()  # nothing is closing: returns at once
        assert client.is_connected()
        assert client.kv_count() == 0


def test_a_hand_off_to_an_interrupted_thread_passes_on_to_the_next_sleeper(
    server: MemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L holds the reader role while F and G sleep; L lets go and the role goes to F, which
    is interrupted as it wakes. G must still get its reply, without a deadline to save it."""
    release_leader = threading.Event()
    real_lead = ndb_sync.NdbClient._lead
    real_sleep = reader_role.ReaderRole.sleep

    def lead(self: ndb_sync.NdbClient, proto: Any, waiter: Any) -> None:
        real_lead(self, proto, waiter)
        if threading.current_thread().name == "L":
            release_leader.wait(10)  # keep the role until F and G sleep

    def sleep(waiter: Any, timeout: float | None) -> None:
        real_sleep(waiter, timeout)
        if threading.current_thread().name == "F" and not waiter.done:
            raise Interrupt

    monkeypatch.setattr(ndb_sync.NdbClient, "_lead", lead)
    monkeypatch.setattr(reader_role.ReaderRole, "sleep", staticmethod(sleep))
    outcomes: dict[str, str] = {}

    with ndb_sync.NdbClient(timeout=None) as client:
        assert client.open(server.url)

        def run(name: str) -> None:
            try:
                client.kv_set({name: 1})
                outcomes[name] = "ok"
            except Interrupt:
                outcomes[name] = "interrupted"

        threads = {n: threading.Thread(target=run, args=(n,), name=n) for n in "LFG"}
        threads["L"].start()
        for name in "FG":
            while not client._role.held:  # L has the role before the others come
                threading.Event().wait(0.01)
            threads[name].start()
            for _ in range(500):  # F (then G) is asleep as a follower
                with client._lock:
                    if len(client._role._followers) == "FG".index(name) + 1:
                        break
                threading.Event().wait(0.01)
        release_leader.set()
        for thread in threads.values():
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads.values()), outcomes
        assert outcomes == {"L": "ok", "F": "interrupted", "G": "ok"}
        assert client.kv_get(("G", "L")) == {"G": 1, "L": 1}


class ArmableLock:
    """The client's lock, whose next acquisition by the thread it is armed for raises
    `Interrupt` (a KeyboardInterrupt arriving as that thread waits for the lock)."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.armed_for: threading.Thread | None = None

    @classmethod
    def install(cls, client: ndb_sync.NdbClient, monkeypatch: pytest.MonkeyPatch) -> ArmableLock:
        """Put one around ``client``'s lock (the client's and its reader role's)."""
        lock = cls(client._lock)
        monkeypatch.setattr(client, "_lock", lock)
        monkeypatch.setattr(client._role, "_lock", lock)
        return lock

    def arm(self) -> None:
        self.armed_for = threading.current_thread()

    def _interrupt(self) -> None:
        if self.armed_for is threading.current_thread():
            self.armed_for = None
            raise Interrupt

    def __enter__(self) -> bool:
        self._interrupt()
        return bool(self.lock.__enter__())

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(*exc)

    def acquire(self, *args: Any) -> bool:
        self._interrupt()
        return bool(self.lock.acquire(*args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lock, name)


def followers(client: ndb_sync.NdbClient) -> int:
    with client._lock:
        return len(client._role._followers)


def run_threads(
    client: ndb_sync.NdbClient, names: str, outcomes: dict[str, str], *, reconnects: str = ""
) -> Any:
    """One thread per letter of ``names``, each setting the key of its name (or, if its letter
    is in ``reconnects``, reconnecting); each outcome ("ok" or "interrupted") lands in
    ``outcomes``. Returns a function starting one by name."""
    threads: dict[str, threading.Thread] = {}

    def run(name: str) -> None:
        try:
            if name in reconnects:
                client.reconnect()
            else:
                client.kv_set({name: 1})
            outcomes[name] = "ok"
        except Interrupt:
            outcomes[name] = "interrupted"

    for name in names:
        threads[name] = threading.Thread(target=run, args=(name,), name=name, daemon=True)

    def start(name: str) -> threading.Thread:
        threads[name].start()
        return threads[name]

    return start


def l_leads_then_f_is_interrupted_when_handed_the_role(
    client: ndb_sync.NdbClient, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Event, threading.Event]:
    """The thread called L, once its request is answered, keeps the reader role (the first
    event returned is set then) until the second event is set; the thread called F, woken to
    take the role over, is interrupted as it next takes the lock."""
    release_leader, keeping = threading.Event(), threading.Event()
    real_lead = ndb_sync.NdbClient._lead
    real_sleep = reader_role.ReaderRole.sleep
    lock = ArmableLock.install(client, monkeypatch)

    def lead(self: ndb_sync.NdbClient, proto: Any, waiter: Any) -> None:
        real_lead(self, proto, waiter)
        if threading.current_thread().name == "L":
            keeping.set()
            release_leader.wait(10)  # keep the role until the others sleep

    def sleep(waiter: Any, timeout: float | None) -> bool:
        woken = real_sleep(waiter, timeout)
        if threading.current_thread().name == "F" and waiter.handed:
            lock.arm()
        return woken

    monkeypatch.setattr(ndb_sync.NdbClient, "_lead", lead)
    monkeypatch.setattr(reader_role.ReaderRole, "sleep", staticmethod(sleep))
    return keeping, release_leader


@pytest.mark.parametrize("handed_to", ["request", "reconnect"])
def test_an_interrupt_as_a_handed_over_thread_takes_the_lock_passes_the_role_on(
    server: MemoryServer, monkeypatch: pytest.MonkeyPatch, handed_to: str
) -> None:
    """L holds the reader role while F (waiting for a reply, or in `reconnect`, waiting to
    take the role) and G sleep; L lets go and the role goes to F, whose first lock
    acquisition after waking is interrupted. The lock must not be left released by a thread
    that did not hold it, nor the role lost: G must still get its reply, though nothing has a
    deadline that would wake it."""
    outcomes: dict[str, str] = {}

    with ndb_sync.NdbClient(timeout=None) as client:
        assert client.open(server.url)
        keeping, release_leader = l_leads_then_f_is_interrupted_when_handed_the_role(
            client, monkeypatch
        )
        reconnects = "F" if handed_to == "reconnect" else ""
        start = run_threads(client, "LFG", outcomes, reconnects=reconnects)
        threads = [start("L")]
        assert keeping.wait(10)  # answered: L only keeps the role
        threads.append(start("F"))
        assert until(lambda: followers(client) == 1)
        threads.append(start("G"))
        assert until(lambda: followers(client) == 2)
        release_leader.set()
        for thread in threads:
            thread.join(10)
        assert outcomes == {"L": "ok", "F": "interrupted", "G": "ok"}
        assert not client._role.held and not client._lock.locked()
        monkeypatch.undo()
        assert client.kv_get(("G", "L")) == {"G": 1, "L": 1}


@pytest.mark.parametrize("where", ["just after taking it", "as it lets go of it"])
def test_an_interrupt_of_the_leader_leaves_the_role_free(
    server: MemoryServer, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """X takes the reader role, and is interrupted in the step just after (before it reads),
    or, its request answered, as it takes the lock to let go of the role. The role must not
    stay held by nobody: G, coming next, gets its reply."""
    outcomes: dict[str, str] = {}

    with ndb_sync.NdbClient(timeout=None) as client:
        assert client.open(server.url)
        if where == "just after taking it":
            real_take = reader_role.ReaderRole.take

            def take(self: reader_role.ReaderRole, *args: Any) -> bool:
                taken = real_take(self, *args)
                if taken and threading.current_thread().name == "X":
                    raise Interrupt
                return taken

            monkeypatch.setattr(reader_role.ReaderRole, "take", take)
        else:
            lock = ArmableLock.install(client, monkeypatch)
            real_lead = ndb_sync.NdbClient._lead

            def lead(self: ndb_sync.NdbClient, proto: Any, waiter: Any) -> None:
                real_lead(self, proto, waiter)
                if threading.current_thread().name == "X":
                    lock.arm()

            monkeypatch.setattr(ndb_sync.NdbClient, "_lead", lead)
        start = run_threads(client, "XG", outcomes)
        start("X").join(10)
        assert outcomes == {"X": "interrupted"}
        assert not client._role.held
        start("G").join(10)
        assert outcomes["G"] == "ok"


def test_an_interrupt_as_a_closing_thread_is_handed_the_role_passes_it_to_the_next_closer(
    server: MemoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L holds the reader role (its request answered, it keeps it a while); F closes the client
    and G waits for the close to finish, both following L. L lets go: the role goes to F,
    whose first lock acquisition after waking is interrupted. G must take over and finish the
    close (nothing else would: the closing threads do not poll)."""
    outcomes: dict[str, str] = {}

    with ndb_sync.NdbClient(timeout=None) as client:
        assert client.open(server.url)
        keeping, release_leader = l_leads_then_f_is_interrupted_when_handed_the_role(
            client, monkeypatch
        )

        def run(name: str, call: Any) -> threading.Thread:
            def target() -> None:
                try:
                    call()
                    outcomes[name] = "ok"
                except Interrupt:
                    outcomes[name] = "interrupted"
                except ClientClosedError:
                    outcomes[name] = "closed"

            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            return thread

        threads = [run("L", lambda: client.kv_set({"L": 1}))]
        assert keeping.wait(10)  # answered: L only keeps the role
        threads.append(run("F", client.close))
        assert until(lambda: followers(client) == 1)
        threads.append(run("G", client.wait_closed))
        assert until(lambda: followers(client) == 2)
        release_leader.set()
        for thread in threads:
            thread.join(10)
        assert outcomes == {"L": "ok", "F": "interrupted", "G": "ok"}
        assert not client.is_connected()
        assert not client._role.held and not client._lock.locked()
