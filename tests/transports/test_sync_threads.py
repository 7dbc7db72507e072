"""The blocking client's fast paths when threads share it: a reply wakes only its owner, the
reader role passes from thread to thread, and the thread that writes (without the lock) takes
what other threads queued meanwhile. Replies always reach the right thread, in FIFO order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import ndb_transports.sync as ndb_sync
from ndb_proto.errors import NdbTimeoutError
from tests.transports.proxy import C2S, Proxy

THREADS = 16


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(n)`` in ``count`` threads released together; their results (or errors)."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = target(n)
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
        assert not thread.is_alive()
    return results


def test_many_threads_submitting_at_once_each_get_their_own_replies(proxy: Proxy) -> None:
    with ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(proxy.url)

        def work(n: int) -> int:
            for r in range(30):
                client.kv_set({f"t{n}": [n, r]})
                assert client.kv_get(key=f"t{n}") == [n, r]
                assert client.kv_get([f"t{n}", "absent"]) == {f"t{n}": [n, r]}
            return n

        assert run_threads(THREADS, work) == list(range(THREADS))
        assert client.kv_count() == THREADS
        assert len(proxy.accepted) == 1  # no frame was ever torn or out of step


def test_the_writing_thread_flushes_what_others_queued(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first write is held; the other threads queue meanwhile and leave in one more write."""
    writes: list[bytes] = []
    release = threading.Event()
    real_write = ndb_sync._write

    def slow_write(sock: Any, data: bytes) -> None:
        writes.append(data)
        if len(writes) == 1:
            release.wait(10)
        real_write(sock, data)

    with ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(proxy.url)
        client.kv_set({"k": 0})
        proto = client._proto
        assert proto is not None
        monkeypatch.setattr(ndb_sync, "_write", slow_write)
        results: list[Any] = []

        def start() -> None:
            results.extend(run_threads(8, lambda n: client.kv_set({f"k{n}": n})))

        runner = threading.Thread(target=start)
        runner.start()
        deadline = threading.Event()
        while proto.pending < 8 and not deadline.wait(0.01):
            pass
        release.set()
        runner.join(20)
        assert results == [None] * 8
        assert len(writes) == 2  # one frame, then the seven queued behind it together
        assert client.kv_get([f"k{n}" for n in range(8)]) == {f"k{n}": n for n in range(8)}


def test_a_reply_arriving_while_another_thread_writes(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thread A waits for a reply; thread B's write is held outside the lock; A's reply arrives
    and reaches A meanwhile; B then completes."""
    arm, held, release = threading.Event(), threading.Event(), threading.Event()
    real_write = ndb_sync._write

    def held_write(sock: Any, data: bytes) -> None:
        if arm.is_set() and not held.is_set():  # the first write once armed: B's request
            held.set()
            release.wait(10)
        real_write(sock, data)

    with ndb_sync.NdbClient(timeout=10) as client:
        assert client.open(proxy.url)
        client.kv_set({"a": "A"})
        monkeypatch.setattr(ndb_sync, "_write", held_write)
        sent = len(proxy.texts(C2S))
        proxy.stall()
        got: dict[str, Any] = {}
        # KV_CONTAINS: B's request may go out behind it (not behind a GET's unbounded reply).
        a = threading.Thread(target=lambda: got.setdefault("a", client.kv_contains(["a"])))
        a.start()
        while len(proxy.texts(C2S)) == sent and not release.wait(0.01):
            pass
        arm.set()
        b = threading.Thread(target=lambda: got.setdefault("b", client.kv_set({"b": 1})))
        b.start()
        assert held.wait(10)  # B is writing, without the lock
        proxy.resume()
        a.join(10)
        assert got == {"a": ["a"]}  # A got its reply while B's write is still held
        assert b.is_alive()
        release.set()
        b.join(10)
        assert got == {"a": ["a"], "b": None}
        assert client.kv_get(key="b") == 1


def test_a_reader_timing_out_hands_the_role_on(proxy: Proxy) -> None:
    """The thread reading for everyone times out; another thread takes over the reading and
    gets its own reply, never the late one of the thread that gave up."""
    with ndb_sync.NdbClient(timeout=10, reply_grace=10) as client:
        assert client.open(proxy.url)
        client.kv_set({"a": "A", "b": "B"})
        proxy.stall()
        got: dict[str, Any] = {}

        def first() -> None:
            try:
                client.kv_get(key="a", timeout=0.3)
            except NdbTimeoutError as exc:
                got["a"] = exc

        a = threading.Thread(target=first)
        a.start()
        deadline = threading.Event()
        while not client._role.held and not deadline.wait(0.01):
            pass
        b = threading.Thread(target=lambda: got.setdefault("b", client.kv_get(key="b")))
        b.start()
        a.join(10)
        assert isinstance(got["a"], NdbTimeoutError) and got["a"].outcome_unknown is True
        assert b.is_alive()  # now the reader, still waiting
        proxy.resume()
        b.join(10)
        assert got["b"] == "B"
        assert client.kv_get(key="a") == "A"
        assert len(proxy.accepted) == 1
