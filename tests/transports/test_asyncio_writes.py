"""The asyncio client's writes: a caller alone on the wire writes its request before it first
waits; callers that find others waiting leave together in one write at the end of the loop turn.

The memory server answers inside the client's write, and its reply reaches the client through
the event loop's queue, so the order of a loop turn is known: a reply can be read between a
caller's submit and the batched write that would send it. ``stall()`` holds the requests (and so
the replies) until ``resume()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ndb_server.memory import MemoryServer
from ndb_transports.asyncio import NdbClient
from tests.transports.proxy import C2S, FrameParser

KV_SET = '{"KV_SET":'


@pytest.fixture
def server(ndb_memory_server_factory: Callable[..., MemoryServer]) -> MemoryServer:
    return ndb_memory_server_factory()


def run(server: MemoryServer, body: Callable[[NdbClient], Awaitable[None]], **options: Any) -> None:
    """``body(client)`` under asyncio, with a client open on ``server``."""

    async def main() -> None:
        async with NdbClient(**options) as client:
            assert await client.open(server.url)
            await body(client)

    asyncio.run(main())


def record_writes(client: NdbClient) -> tuple[list[list[str]], list[str]]:
    """Record what the client writes from now on: the text frames of each write, and every
    text frame in order."""
    transport: Any = client._transport
    assert transport is not None
    write: Callable[[bytes], None] = transport.write
    frames: list[str] = []
    parser = FrameParser(C2S, 0, lambda frame: frames.append(frame.text))
    parser.in_head = False  # the upgrade is over
    writes: list[list[str]] = []

    def recording(data: bytes) -> None:
        before = len(frames)
        parser.feed(bytes(data))
        writes.append(frames[before:])
        write(data)

    transport.write = recording
    return writes, frames


def test_a_caller_alone_writes_before_it_first_waits(server: MemoryServer) -> None:
    async def body(client: NdbClient) -> None:
        writes, _ = record_writes(client)
        task = asyncio.ensure_future(client.kv_set({"x": 1}))
        await asyncio.sleep(0)  # the task runs up to its first wait, and no further
        assert not task.done()
        assert len(writes) == 1 and writes[0][0].startswith(KV_SET)
        await task
        assert await client.kv_get(key="x") == 1

    run(server, body)


def test_callers_of_one_loop_turn_leave_in_one_write_in_order(server: MemoryServer) -> None:
    async def body(client: NdbClient) -> None:
        writes, _ = record_writes(client)
        server.stall()
        first = asyncio.ensure_future(client.kv_set({"first": 0}))
        await asyncio.sleep(0)
        assert len(writes) == 1  # alone: written at once
        many = [asyncio.ensure_future(client.kv_set({f"k{n}": n})) for n in range(10)]
        await asyncio.sleep(0)  # they all submit in this turn...
        assert len(writes) == 1  # ...and none writes alone: the first is in flight
        await asyncio.sleep(0)  # the batched write, at the end of that turn
        assert len(writes) == 2
        assert [text.split('"')[5] for text in writes[1]] == [f"k{n}" for n in range(10)]
        server.resume()
        await asyncio.gather(first, *many)
        assert await client.kv_get([f"k{n}" for n in range(10)]) == {f"k{n}": n for n in range(10)}

    run(server, body)


def test_a_reply_read_between_a_submit_and_its_batched_write(server: MemoryServer) -> None:
    """The first caller writes alone and its reply is queued on the loop before the second
    caller's batched write runs: reading it writes the second request (once), and each caller
    gets its own reply."""

    async def body(client: NdbClient) -> None:
        await client.kv_set({"a": "A", "b": "B"})
        _, frames = record_writes(client)
        results = await asyncio.gather(client.kv_get(key="a"), client.kv_get(key="b"))
        assert results == ["A", "B"]
        assert len(frames) == 2  # each request written exactly once
        assert client._proto is not None and client._proto.in_flight == 0
        assert not client._waiters

    run(server, body)


def test_many_tasks_submitting_at_once_get_their_own_replies(server: MemoryServer) -> None:
    async def body(client: NdbClient) -> None:
        _, frames = record_writes(client)

        async def one(n: int) -> Any:
            await client.kv_set({f"k{n}": n})
            return await client.kv_get(key=f"k{n}")

        assert await asyncio.gather(*(one(n) for n in range(100))) == list(range(100))
        assert len(frames) == 200  # nothing written twice
        assert client._proto is not None and client._proto.pending == 0

    run(server, body, max_in_flight=8)


def test_a_request_cancelled_right_after_it_was_written_alone_is_not_resent(
    server: MemoryServer,
) -> None:
    async def body(client: NdbClient) -> None:
        await client.kv_set({"a": "A", "b": "B"})
        _, frames = record_writes(client)
        server.stall()
        # KV_CONTAINS (a bounded reply): a second request may be written behind it, which
        # is not so behind an unanswered GET.
        first = asyncio.ensure_future(client.kv_contains(["a"]))
        await asyncio.sleep(0)
        assert len(frames) == 1  # written, alone, before it waited
        first.cancel()
        second = asyncio.ensure_future(client.kv_contains(["b"]))
        await asyncio.sleep(0)
        assert first.cancelled()
        proto = client._proto
        assert proto is not None
        # Given up, it keeps its place on the wire (its reply will be dropped): two in
        # flight, one caller waiting.
        assert proto.in_flight == 2 and proto.pending == 1
        server.resume()
        assert await second == ["b"]  # not the cancelled request's reply
        assert len(frames) == 2  # the cancelled request was not written again
        assert proto.in_flight == 0 and proto.pending == 0
        assert await client.kv_get(key="a") == "A"

    run(server, body)
