"""The trio client's direct write: a caller alone on the wire sends its request itself.

The write is made slow here (the connection's ``send_all`` waits after sending) so that other
tasks submit, replies arrive and cancellations land while one task is writing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from ndb_proto.errors import ConnectionLostError
from ndb_server.memory import MemoryServer
from ndb_server.thread import ServerThread
from ndb_transports.trio import NdbClient
from tests.transports.proxy import C2S, Proxy

SendAll = Callable[[bytes], Awaitable[None]]


def run_connected(url: str, body: Callable[[NdbClient], Awaitable[None]], **options: Any) -> None:
    """Run ``body`` in a trio run, with a client (made with ``options``) open on ``url``."""

    async def main() -> None:
        async with NdbClient(**options) as client:
            assert await client.open(url)
            await body(client)

    trio.run(main)


def replace_writes(client: NdbClient, wrap: Callable[[SendAll], SendAll]) -> None:
    """Put ``wrap(send_all)`` in place of the connection's ``send_all``, and take away the
    descriptor shortcut, so that every write (direct or by the writer task) goes through it."""
    stream: Any = client._stream
    assert stream is not None
    client._fd = -1
    stream.send_all = wrap(stream.send_all)


def slow_writes(client: NdbClient, pause: float) -> list[bytes]:
    """Make every write of the client's connection pause after sending, and return the list
    the written chunks are recorded in."""
    written: list[bytes] = []

    def wrap(send_all: SendAll) -> SendAll:
        async def slow(data: bytes) -> None:
            await send_all(data)
            written.append(bytes(data))
            await trio.sleep(pause)

        return slow

    replace_writes(client, wrap)
    return written


def test_a_caller_alone_writes_and_gets_a_reply_that_came_while_it_wrote(
    ndb_memory_server_factory: Callable[..., MemoryServer],
) -> None:
    async def body(client: NdbClient) -> None:
        await client.kv_set({"x": 1})
        written = slow_writes(client, 0.05)
        # The reply arrives during the pause, while the caller still writes.
        assert await client.kv_get(key="x") == 1
        assert len(written) == 1
        assert not client._early  # nothing left behind

    run_connected(ndb_memory_server_factory().url, body)


def test_tasks_submitting_while_one_writes_are_sent_after_it_in_order(
    ndb_memory_server_factory: Callable[..., MemoryServer],
) -> None:
    async def body(client: NdbClient) -> None:
        written = slow_writes(client, 0.05)
        results: dict[int, Any] = {}

        async def setter(n: int) -> None:
            await client.kv_set({f"k{n}": n})
            results[n] = await client.kv_get(key=f"k{n}")

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(setter, n)
        assert results == {n: n for n in range(20)}
        # The others' frames did not wait for a write each: they went together.
        assert len(written) < 40

    run_connected(ndb_memory_server_factory().url, body)


def test_frames_leave_in_the_order_requests_were_submitted(proxy: Proxy) -> None:
    """Direct writes and the writer task's batched writes share one FIFO: the server sees the
    requests in the order the core numbered them."""

    async def body(client: NdbClient) -> None:
        proto: Any = client._proto
        submitted: list[bytes] = []
        submit = proto.submit

        def record(request: Any, deadline: float | None = None) -> int:
            submitted.append(request.payload)
            return int(submit(request, deadline))

        proto.submit = record

        async def worker(n: int) -> None:
            for r in range(5):
                await client.kv_set({f"w{n}": r})
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            for n in range(16):
                nursery.start_soon(worker, n)
        await client.kv_set({"last": 1})
        sent = [frame.payload for frame in proxy.frames_of(C2S, 1)]
        assert sent[-len(submitted) :] == submitted

    run_connected(proxy.url, body)


def test_cancelled_while_writing_the_write_completes_and_the_connection_stays_in_step(
    ndb_memory_server_factory: Callable[..., MemoryServer],
) -> None:
    async def body(client: NdbClient) -> None:
        await client.kv_set({"x": 1, "y": 2})
        written = slow_writes(client, 0.05)
        with trio.move_on_after(0.01) as scope:
            await client.kv_set({"x": 10})  # cancelled during the pause, after sending
        assert scope.cancelled_caught
        assert len(written) == 1  # sent whole, never cut
        # The cancelled request ran (it was sent); its reply is dropped, not handed on.
        assert await client.kv_get(key="y") == 2
        assert await client.kv_get(key="x") == 10
        assert client.is_connected()

    run_connected(ndb_memory_server_factory().url, body)


def test_a_socket_error_during_a_direct_write_fails_the_request_once(
    ndb_server_factory: Callable[..., ServerThread],
) -> None:
    def wrap(send_all: SendAll) -> SendAll:
        async def broken(data: bytes) -> None:
            raise trio.BrokenResourceError("cut")

        return broken

    async def body(client: NdbClient) -> None:
        replace_writes(client, wrap)
        with pytest.raises(ConnectionLostError) as lost:
            await client.kv_set({"x": 1})
        assert lost.value.outcome_unknown
        assert not client.is_connected()

    run_connected(ndb_server_factory().url, body, auto_reconnect=False)
