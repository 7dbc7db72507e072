"""Cancellation at every await point never desynchronises the connection: after any pattern of
cancelled and timed-out callers, each later request gets its own reply, on the same connection.

asyncio (``task.cancel()``, ``wait_for``) and trio (cancel scopes, ``move_on_after``) are tested
here; the blocking client cannot be cancelled, so it is covered through tiny per-call timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from ndb_proto.errors import (
    ClientClosedError,
    ConnectionLostError,
    NdbTimeoutError,
    ResponseError,
)
from ndb_server.thread import ServerThread
from tests.transports.flavours import Flavour
from tests.transports.proxy import C2S, Proxy

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

KEYS = 32


@pytest.fixture(params=["asyncio", "trio"])
def async_flavour(request: pytest.FixtureRequest) -> Flavour:
    return Flavour(request.param)


def operations(c: Any, session: Any) -> list[Callable[[int], tuple[Awaitable[Any], Any]]]:
    """Requests with different reply shapes, each with the result it must produce for key i."""
    return [
        lambda i: (c.kv_get([f"k{i}"]), {f"k{i}": f"v{i}"}),
        lambda i: (c.kv_get(key=f"k{i}"), f"v{i}"),
        lambda i: (c.kv_contains([f"k{i}", "nope"]), [f"k{i}"]),
        lambda i: (c.kv_count(), KEYS),
        lambda i: (c.sh_get(session, key=f"s{i}"), i),
        lambda i: (c.kv_find("$", "keys", [f"k{i}"]), [f"k{i}"]),
        lambda i: (c.sv_info(), {"persistEnabled": False, "serverVersion": "0.7.4"}),
    ]


async def populate(c: Any) -> Any:
    await c.kv_set({f"k{i}": f"v{i}" for i in range(KEYS)})
    session = await c.sh_create()
    await session.set({f"s{i}": i for i in range(KEYS)})
    return session


async def check_all(c: Any, session: Any) -> None:
    """Every kind of request, for every key, in sequence and concurrently: own replies only."""
    ops = operations(c, session)
    for i in range(KEYS):
        for op in ops:
            awaitable, expected = op(i)
            assert await awaitable == expected


def test_random_cancellation_never_desynchronises(async_flavour: Flavour, proxy: Proxy) -> None:
    flavour = async_flavour
    rng = random.Random(20240601)

    async def main() -> None:
        async with flavour.connected(proxy.url, max_in_flight=4) as c:
            session = await populate(c)
            ops = operations(c, session)
            cancelled = completed = 0
            for _ in range(25):
                checks: list[tuple[Any, Any]] = []
                async with flavour.group() as group:
                    for _ in range(16):
                        i = rng.randrange(KEYS)
                        op = rng.choice(ops)

                        async def call(op: Any = op, i: int = i) -> Any:
                            awaitable, expected = op(i)
                            return await awaitable, expected

                        checks.append((group.start(call), None))
                        if rng.random() < 0.3:
                            await flavour.checkpoint()
                    # Cancel at random points: before the task ran, before its request was
                    # written, while written and unanswered, after the reply arrived.
                    for _ in range(rng.randrange(4)):
                        await flavour.checkpoint()
                    for outcome, _ in checks:
                        if rng.random() < 0.4:
                            outcome.cancel()
                        if rng.random() < 0.2:
                            await flavour.sleep(rng.choice([0, 0.0005, 0.002]))
                for outcome, _ in checks:
                    assert outcome.done
                    assert outcome.error is None, outcome
                    if outcome.cancelled:
                        cancelled += 1
                        continue
                    value, expected = outcome.value
                    assert value == expected
                    completed += 1
            assert cancelled > 0
            assert completed > 0
            # Some cancelled requests had been written (their replies were read and dropped):
            # more requests went out than the 3 of populate() and the completed ones.
            assert len(proxy.texts(C2S)) > completed + 3
            await check_all(c, session)
            # Never a reply given to the wrong caller, so never a violation and a new connection.
            assert len(proxy.accepted) == 1
            assert c.is_connected()

    flavour.run(main)


def test_random_tiny_timeouts_never_desynchronise(flavour: Flavour, proxy: Proxy) -> None:
    """Per-call timeouts expiring at any point (also for the blocking client, from 8 threads)."""
    rng = random.Random(7)

    async def main() -> None:
        async with flavour.connected(proxy.url, max_in_flight=4, reply_grace=5.0) as c:
            session = await populate(c)
            ops = operations(c, session)
            timed_out = completed = 0
            workers = 8 if flavour.is_sync else 16
            for _ in range(6):
                async with flavour.group() as group:
                    plans = []
                    for _ in range(workers):
                        i = rng.randrange(KEYS)
                        op = rng.choice(ops[:2])
                        timeout = rng.choice([0.0001, 0.0005, 0.001, 0.003, 2.0])

                        async def call(i: int = i, op: Any = op, timeout: float = timeout) -> Any:
                            if op is ops[0]:
                                return await c.kv_get([f"k{i}"], timeout=timeout), {
                                    f"k{i}": f"v{i}"
                                }
                            return await c.kv_get(key=f"k{i}", timeout=timeout), f"v{i}"

                        plans.append(group.start(call))
                for outcome in plans:
                    if isinstance(outcome.error, NdbTimeoutError):
                        timed_out += 1
                        continue
                    value, expected = outcome.unwrap()
                    assert value == expected
                    completed += 1
            assert completed > 0
            await check_all(c, session)
            assert len(proxy.accepted) == 1

    flavour.run(main)


def test_cancelled_written_request_reply_is_dropped(async_flavour: Flavour, proxy: Proxy) -> None:
    flavour = async_flavour

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({"a": "A", "b": "B"})
            proxy.stall()
            async with flavour.group() as group:
                # KV_CONTAINS, not KV_GET: nothing is written behind a GET until it is answered.
                first = group.start(c.kv_contains, ["a"])
                await flavour.until(lambda: len(proxy.texts(C2S)) == 2)
                first.cancel()
                await flavour.until(lambda: first.done)
                second = group.start(c.kv_contains, ["b"])
                await flavour.until(lambda: len(proxy.texts(C2S)) == 3)
                proxy.resume()
            assert first.cancelled
            assert second.unwrap() == ["b"]
            assert await c.kv_get(key="a") == "A"
            assert len(proxy.accepted) == 1

    flavour.run(main)


def test_cancelled_queued_request_is_never_written(async_flavour: Flavour, proxy: Proxy) -> None:
    flavour = async_flavour

    async def main() -> None:
        async with flavour.connected(proxy.url, max_in_flight=1) as c:
            proxy.stall()
            async with flavour.group() as group:
                first = group.start(c.kv_set, {"first": 1})
                await flavour.until(lambda: len(proxy.texts(C2S)) == 1)
                queued = group.start(c.kv_set, {"queued": 1})
                await flavour.sleep(0.05)
                queued.cancel()
                await flavour.until(lambda: queued.done)
                proxy.resume()
            assert queued.cancelled
            assert first.unwrap() is None
            assert await c.kv_get(["first", "queued"]) == {"first": 1}
            assert not any("KV_SET" in text and "queued" in text for text in proxy.texts(C2S))

    flavour.run(main)


def test_asyncio_task_cancel_and_wait_for(ndb_server: ServerThread) -> None:
    flavour = Flavour("asyncio")

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"x": 1})
            # Cancelled before it ever ran: never submitted, so it certainly did not run.
            task = asyncio.ensure_future(c.kv_set({"never": 1}))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Cancelled just after submitting, before the batched write: it may still run
            # (outcome unknown), but its reply goes to nobody.
            task = asyncio.ensure_future(c.kv_set({"submitted": 1}))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for delay in (0, 0, 0.00001, 0.0001, 0.001):
                with contextlib.suppress(asyncio.TimeoutError):
                    assert await asyncio.wait_for(c.kv_get(key="x"), delay) == 1
            assert "never" not in await c.kv_keys()
            assert await c.kv_get(key="x") == 1
            assert await c.kv_contains(["x"]) == ["x"]

    flavour.run(main)


def test_trio_cancel_scopes(ndb_server: ServerThread) -> None:
    flavour = Flavour("trio")

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"x": 1})
            with trio.CancelScope() as scope:
                scope.cancel()
                await c.kv_set({"cancelled": 1})
            assert scope.cancelled_caught
            for delay in (0, 0.00001, 0.0001, 0.001):
                with trio.move_on_after(delay):
                    assert await c.kv_get(key="x") == 1
            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(c.kv_set, {f"n{i}": i})
                await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()
            assert await c.kv_get(key="x") == 1
            got = await c.kv_get([f"n{i}" for i in range(10)])
            assert all(got[name] == int(name[1:]) for name in got)
            assert await c.kv_contains(["x", "zz"]) == ["x"]

    flavour.run(main)


def test_cancel_open(async_flavour: Flavour, ndb_server: ServerThread, proxy_factory: Any) -> None:
    """Cancelling open() (here: a server that never answers the upgrade) leaves the client
    closed and reusable."""
    flavour = async_flavour
    silent = proxy_factory(None, mode="blackhole")

    async def main() -> None:
        client = flavour.client(connect_timeout=5.0)
        async with flavour.group() as group:
            opening = group.start(client.open, silent.url)
            await flavour.until(lambda: len(silent.accepted) == 1)
            opening.cancel()
        assert opening.cancelled
        assert not client.is_connected()
        with pytest.raises(ClientClosedError):
            await client.kv_count()
        assert await client.open(ndb_server.url) is True
        assert await client.kv_count() == 0
        await client.close()

    flavour.run(main)


def test_cancel_reconnect(async_flavour: Flavour, proxy: Proxy) -> None:
    flavour = async_flavour

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            proxy.stall()
            async with flavour.group() as group:
                reconnecting = group.start(c.reconnect)
                await flavour.until(lambda: len(proxy.accepted) == 2)
                reconnecting.cancel()
            assert reconnecting.cancelled
            proxy.resume()
            assert await c.kv_count() == 0
            assert c.is_connected()

    flavour.run(main)


def test_cancel_waiting_for_close(async_flavour: Flavour, proxy: Proxy) -> None:
    """Cancelling ``await client.close()`` does not stop the close: requests fail at once and
    the client ends up closed."""
    flavour = async_flavour

    async def main() -> None:
        c = flavour.client()
        assert await c.open(proxy.url)
        proxy.stall()  # the server's close frame will not come back
        async with flavour.group() as group:
            pending = group.start(c.kv_count)
            await flavour.until(lambda: len(proxy.texts(C2S)) == 1)
            closing = group.start(c.close)
            await flavour.until(lambda: pending.done)
            closing.cancel()
        assert isinstance(pending.error, ClientClosedError)
        assert closing.cancelled
        assert not c.is_connected()
        with pytest.raises(ClientClosedError):
            await c.kv_count()
        proxy.resume()
        await flavour.within(5.0, c.wait_closed())

    flavour.run(main)


# -- trio: one documented exception, never an ExceptionGroup ----------------------------------


def test_trio_errors_are_not_exception_groups(proxy: Proxy) -> None:
    flavour = Flavour("trio")

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            with pytest.raises(ResponseError) as response:
                await c.kv_save("x")
            assert type(response.value) is ResponseError
            proxy.stall()  # no reply can beat the timeout (a caller alone may write at once)
            with pytest.raises(NdbTimeoutError) as timeout:
                await c.kv_count(timeout=0.01)
            assert type(timeout.value) is NdbTimeoutError
            async with flavour.group() as group:
                pending = group.start(c.kv_count)
                await flavour.until(lambda: len(proxy.texts(C2S)) == 3)
                proxy.kill()
                proxy.resume()
            error = pending.error
            assert type(error) is ConnectionLostError
            assert not isinstance(error, BaseExceptionGroup)
            assert error.__cause__ is not None
            assert not isinstance(error.__cause__, BaseExceptionGroup)
            c.close()
            with pytest.raises(ClientClosedError) as closed:
                await c.kv_count()
            assert type(closed.value) is ClientClosedError

    trio.run(main, strict_exception_groups=True)


def test_trio_run_ending_with_an_open_client_logs_no_error(
    ndb_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        client = Flavour("trio").client()
        assert await client.open(ndb_server.url)
        assert await client.kv_count() == 0
        # The program ends without closing the client.

    with caplog.at_level(logging.DEBUG, logger="ndb"):
        trio.run(main)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
