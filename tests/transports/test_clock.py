"""One clock for a test's server and clients, in every flavour: trio's MockClock, and
`VirtualClock` for an asyncio loop, the blocking client and the socket server. Each test moves
minutes of time and takes milliseconds; none asserts anything about real time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import trio
import trio.testing
from trio.testing import MockClock

import ndb_transports.asyncio as ndb_asyncio
import ndb_transports.sync as ndb_sync
import ndb_transports.trio as ndb_trio
from ndb_proto.errors import ConnectionLostError, NdbTimeoutError
from ndb_proto.reconnect import Backoff
from ndb_server import MemoryServer, ServerThread, VirtualClock
from tests.transports.waiting import WatchedClock, until

T = TypeVar("T")

FIXED_BACKOFF = Backoff(initial=10, maximum=30, jitter=0)
"""Ten seconds before the first reconnect: long enough that waiting for it really would show."""


# -- trio and asyncio: the memory server follows the loop's clock --------------------------------


def run_trio(clock: MockClock, main: Callable[[MemoryServer], Awaitable[None]]) -> None:
    with MemoryServer(clock=clock) as server:
        trio.run(main, server, clock=clock)


def run_on_loop_of(clock: VirtualClock, main: Awaitable[T]) -> T:
    """Run ``main`` to its end on a fresh asyncio loop on ``clock``, then close the loop."""
    loop = clock.new_event_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


def run_asyncio(main: Callable[[MemoryServer], Awaitable[None]]) -> None:
    """Run ``main`` on an asyncio loop on an autojumping `VirtualClock`, which the memory server
    follows too."""
    clock = VirtualClock(autojump_threshold=0)
    with MemoryServer(clock=clock) as server:
        run_on_loop_of(clock, main(server))


async def trio_noticed_drop(client: ndb_trio.NdbClient) -> None:
    await trio.testing.wait_all_tasks_blocked()  # the reader has seen the end of the stream
    assert not client.is_connected()


async def asyncio_noticed_drop(client: ndb_asyncio.NdbClient) -> None:
    for _ in range(100):  # a few turns of the loop, with no time passing
        if not client.is_connected():
            return
        await asyncio.sleep(0)
    raise AssertionError("the client did not see its connection drop")


@dataclass(frozen=True)
class VirtualLoop:
    """An event loop whose time is virtual and autojumps, with a memory server following it:
    trio's MockClock, or asyncio on a `VirtualClock`. The tests taking one are written once
    for both."""

    client: Callable[..., Any]
    """The flavour's ``NdbClient``."""
    run: Callable[[Callable[[MemoryServer], Awaitable[None]]], None]
    """Run ``main(server)`` in a fresh loop, with a fresh memory server on its clock."""
    sleep: Callable[[float], Awaitable[None]]
    now: Callable[[], float]
    """The loop's time (call it inside the loop)."""
    noticed_drop: Callable[[Any], Awaitable[None]]
    """Wait, with no time passing, until the client has seen its connection end."""


VIRTUAL_LOOPS = {
    "trio": VirtualLoop(
        ndb_trio.NdbClient,
        lambda main: run_trio(MockClock(autojump_threshold=0), main),
        trio.sleep,
        trio.current_time,
        trio_noticed_drop,
    ),
    "asyncio": VirtualLoop(
        ndb_asyncio.NdbClient,
        run_asyncio,
        asyncio.sleep,
        lambda: asyncio.get_running_loop().time(),
        asyncio_noticed_drop,
    ),
}


@pytest.fixture(params=list(VIRTUAL_LOOPS))
def virtual_loop(request: pytest.FixtureRequest) -> VirtualLoop:
    return VIRTUAL_LOOPS[request.param]


def test_session_expires_at_the_sweep_on_the_loops_clock(virtual_loop: VirtualLoop) -> None:
    async def main(server: MemoryServer) -> None:
        async with virtual_loop.client() as client:
            assert await client.open(server.url)
            session = await client.sh_create(durationSeconds=60, deleteSessionOnExpire=True)
            await virtual_loop.sleep(61)  # expired at 60; the sweep at 65 has not run yet
            assert await client.sh_session_exists([session.tkn]) == [session.tkn]
            await virtual_loop.sleep(4)
            assert await client.sh_session_exists([session.tkn]) == []
            assert server.now == virtual_loop.now()

    virtual_loop.run(main)


def test_timeout_fires_on_the_loops_clock(virtual_loop: VirtualLoop) -> None:
    async def main(server: MemoryServer) -> None:
        async with virtual_loop.client(timeout=5) as client:
            assert await client.open(server.url)
            server.drop_next_reply()
            started = virtual_loop.now()
            with pytest.raises(NdbTimeoutError):
                await client.kv_set({"a": 1})
            assert virtual_loop.now() - started >= 5

    virtual_loop.run(main)


def test_reconnect_backoff_elapses_on_the_loops_clock(virtual_loop: VirtualLoop) -> None:
    async def main(server: MemoryServer) -> None:
        async with virtual_loop.client(timeout=60, backoff=FIXED_BACKOFF) as client:
            assert await client.open(server.url)
            dropped_at = virtual_loop.now()
            server.drop_connections()
            await virtual_loop.noticed_drop(client)
            assert await client.kv_count() == 0  # waits for the reconnect
            assert virtual_loop.now() - dropped_at >= 10

    virtual_loop.run(main)


def test_keepalive_gives_up_an_unanswered_ping_on_the_loops_clock(
    virtual_loop: VirtualLoop,
) -> None:
    async def main(server: MemoryServer) -> None:
        options: dict[str, Any] = {"ping_interval": 10, "ping_timeout": 5, "timeout": 60}
        async with virtual_loop.client(auto_reconnect=False, **options) as client:
            assert await client.open(server.url)
            server.stall()
            with pytest.raises(ConnectionLostError):
                await client.kv_count()
            server.resume()

    virtual_loop.run(main)


def test_client_answers_the_servers_idle_ping_in_time(virtual_loop: VirtualLoop) -> None:
    """The server pings at 164 s of silence, in the client's own loop, so the client answers
    and is not dropped at 180 s (under trio, a single `advance` could not let it answer)."""

    async def main(server: MemoryServer) -> None:
        async with virtual_loop.client(auto_reconnect=False) as client:
            assert await client.open(server.url)
            await virtual_loop.sleep(500)
            assert client.is_connected()
            assert await client.kv_count() == 0

    virtual_loop.run(main)


def test_trio_server_drops_a_client_that_cannot_answer() -> None:
    async def main(server: MemoryServer) -> None:
        async with ndb_trio.NdbClient(auto_reconnect=False) as client:
            assert await client.open(server.url)
            server.advance(200)  # jumps the MockClock in one step: pinged, then dropped
            await trio_noticed_drop(client)
            with pytest.raises(ConnectionLostError):
                await client.kv_count()

    run_trio(MockClock(), main)  # no autojump: time moves only by jumps


# -- asyncio alone ---------------------------------------------------------------------------------


def test_asyncio_loop_waits_for_a_manual_clock() -> None:
    """Without autojump, the loop's timers wait until another thread moves the clock."""
    clock = VirtualClock()

    async def main() -> float:
        sleeper = asyncio.ensure_future(asyncio.sleep(30))
        await asyncio.sleep(0)  # the sleeper's timer is set, for 30
        mover = threading.Thread(target=clock.advance, args=(30,))
        mover.start()
        await sleeper
        mover.join()
        return asyncio.get_running_loop().time()

    assert run_on_loop_of(clock, main()) == 30


def test_a_server_following_a_function_cannot_be_advanced() -> None:
    with MemoryServer(clock=lambda: 0.0) as server, pytest.raises(TypeError, match="clock"):
        server.advance(1)


# -- the blocking client on a VirtualClock -------------------------------------------------------


@pytest.fixture
def autojumping() -> Iterator[tuple[VirtualClock, MemoryServer]]:
    clock = VirtualClock(autojump_threshold=0)
    with MemoryServer(clock=clock) as server:
        yield clock, server


def test_sync_session_expires_when_the_clock_advances(
    autojumping: tuple[VirtualClock, MemoryServer],
) -> None:
    clock, server = autojumping
    with ndb_sync.NdbClient(clock=clock) as client:
        assert client.open(server.url)
        session = client.sh_create(durationSeconds=60, deleteSessionOnExpire=True)
        clock.advance(61)
        assert client.sh_session_exists([session.tkn]) == [session.tkn]
        clock.advance(4)
        assert client.sh_session_exists([session.tkn]) == []
        assert server.now == clock.current_time() == 65


def test_sync_timeout_fires_on_the_virtual_clock(
    autojumping: tuple[VirtualClock, MemoryServer],
) -> None:
    clock, server = autojumping
    with ndb_sync.NdbClient(timeout=5, clock=clock) as client:
        assert client.open(server.url)
        server.drop_next_reply()
        with pytest.raises(NdbTimeoutError):
            client.kv_set({"a": 1})
        assert clock.current_time() >= 5


def test_sync_reconnect_backoff_elapses_on_the_virtual_clock(
    autojumping: tuple[VirtualClock, MemoryServer],
) -> None:
    clock, server = autojumping
    with ndb_sync.NdbClient(timeout=60, backoff=FIXED_BACKOFF, clock=clock) as client:
        assert client.open(server.url)
        dropped_at = clock.current_time()
        server.drop_connections()
        assert client.kv_count() == 0  # sees the drop, then waits for the reconnect
        assert clock.current_time() - dropped_at >= 10


def test_sync_keepalive_gives_up_an_unanswered_ping(
    autojumping: tuple[VirtualClock, MemoryServer],
) -> None:
    clock, server = autojumping
    options: dict[str, Any] = {"ping_interval": 10, "ping_timeout": 5, "timeout": 60}
    with ndb_sync.NdbClient(auto_reconnect=False, clock=clock, **options) as client:
        assert client.open(server.url)
        server.stall()
        with pytest.raises(ConnectionLostError):
            client.kv_count()
        assert clock.current_time() == 15  # pinged at 10, given up 5 s later
        server.resume()


def test_sync_client_answers_the_servers_idle_ping_while_it_waits(
    autojumping: tuple[VirtualClock, MemoryServer],
) -> None:
    """Waiting 200 s for a lost reply, the client answers the server's ping at 164 s, so the
    request times out, rather than losing its connection at the idle drop (180 s)."""
    clock, server = autojumping
    with ndb_sync.NdbClient(timeout=200, auto_reconnect=False, clock=clock) as client:
        assert client.open(server.url)
        server.drop_next_reply()
        with pytest.raises(NdbTimeoutError):
            client.kv_count()


def test_sync_wait_ends_when_another_thread_advances_the_clock() -> None:
    clock = VirtualClock()  # no autojump: only advance moves it
    with MemoryServer(clock=clock) as server, ndb_sync.NdbClient(timeout=5, clock=clock) as client:
        assert client.open(server.url)
        assert client.kv_count() == 0  # a reply still wakes the caller at once
        server.drop_next_reply()
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                client.kv_set({"a": 1})
            except NdbTimeoutError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        while not server.faults.log:  # the request has reached the server
            caller.join(0.001)
        clock.advance(5)
        caller.join(10)
        assert [type(exc) for exc in outcome] == [NdbTimeoutError]


def test_the_blocking_client_takes_only_a_virtual_clock() -> None:
    with pytest.raises(TypeError, match="clock"):
        ndb_sync.NdbClient(clock=MockClock())  # type: ignore[arg-type]


def test_virtual_clock_refuses_going_back() -> None:
    with pytest.raises(ValueError, match="seconds"):
        VirtualClock().advance(-1)


# -- the socket server on a VirtualClock ---------------------------------------------------------


def test_socket_server_expires_sessions_as_the_virtual_clock_moves() -> None:
    clock = VirtualClock()
    with ServerThread(clock=clock) as server, ndb_sync.NdbClient(clock=clock) as client:
        assert client.open(server.url)
        session = client.sh_create(durationSeconds=60, deleteSessionOnExpire=True)
        clock.advance(59)
        assert client.sh_session_exists([session.tkn]) == [session.tkn]
        clock.advance(6)  # expired at 60, swept at 65, on the server's own thread
        assert client.sh_session_exists([session.tkn]) == []


def test_socket_server_drops_an_idle_client_as_the_virtual_clock_moves() -> None:
    clock = VirtualClock()
    with (
        ServerThread(clock=clock, idle_ping=10, idle_timeout=20) as server,
        ndb_sync.NdbClient(auto_reconnect=False) as client,
    ):
        assert client.open(server.url)
        clock.advance(25)  # pinged at 10, dropped at 20
        with pytest.raises(ConnectionLostError):
            client.kv_count()


# -- the fixtures take the clock -----------------------------------------------------------------


@pytest.fixture
def ndb_clock() -> VirtualClock:
    # No autojump: the socket server answers on its own thread, and a client judging "nothing is
    # happening" alone would jump past its handshake timeout on a loaded machine. The test moves
    # the clock itself.
    return VirtualClock()


def test_fixture_servers_follow_the_ndb_clock_fixture(
    ndb_clock: VirtualClock, ndb_memory_server: MemoryServer, ndb_server: Any
) -> None:
    for server in (ndb_memory_server, ndb_server):
        assert server.clock is ndb_clock
        with ndb_sync.NdbClient(clock=ndb_clock) as client:
            assert client.open(server.url)
            session = client.sh_create(durationSeconds=60, deleteSessionOnExpire=True)
            ndb_clock.advance(65)
            assert client.sh_session_exists([session.tkn]) == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("start", [0.0, 1.7e9], ids=["from-zero", "from-a-wall-clock-time"])
def test_an_asyncio_loop_runs_its_timers_at_any_clock_time(start: float) -> None:
    """Timers run when the clock lands exactly on them, also where one step of a float is
    coarser than asyncio's own clock resolution (a clock started at a wall-clock time): the
    autojump lands there, and so does an advance to the deadline from another thread."""

    async def slept() -> float:
        await asyncio.sleep(0.1)
        return asyncio.get_running_loop().time()

    assert run_on_loop_of(VirtualClock(start, autojump_threshold=0), slept()) == start + 0.1
    clock = VirtualClock(start)

    async def advanced() -> None:
        sleeping = asyncio.ensure_future(asyncio.sleep(0.5))
        await asyncio.sleep(0)
        threading.Thread(target=clock.advance, args=(0.5,)).start()
        await sleeping

    run_on_loop_of(clock, advanced())


def test_a_wait_computed_before_the_clock_moved_looks_again_at_once() -> None:
    """A waiter reads the time, another thread moves the clock past its deadline (waking the
    sleepers, of which it is not yet one), then the waiter starts its wait: it must not sleep
    on, but look again at once."""
    clock = VirtualClock()
    timeout = (clock.current_time() + 1.0) - clock.current_time()  # a deadline 1 s from now
    mover = threading.Thread(target=clock.advance, args=(1.0,))
    mover.start()
    mover.join()
    waits: list[float | None] = []

    def wait(real_seconds: float | None) -> bool:
        waits.append(real_seconds)
        return False

    clock.wait(timeout, wait, lambda: None)
    assert waits == [0.0]


def test_an_idle_sync_client_answers_the_servers_ping_and_keeps_its_connection() -> None:
    """Nobody calls for 400 s: the keepalive thread answers the server's idle ping (sent after
    164 s of silence) within the 16 s the server allows, whatever the phase of its checks."""
    clock = WatchedClock()
    with MemoryServer(clock=clock) as server, ndb_sync.NdbClient(clock=clock) as client:
        assert client.open(server.url)
        client.kv_set({"a": 1})
        for _ in range(400):
            clock.advance(1)
            # The keepalive thread back in its wait, after the checks that fell due.
            assert until(lambda: clock.sleeps_until_later(("ndb-keepalive",)))
            assert server.connection_count == 1
        assert client.kv_get(key="a") == 1
        assert server.connection_count == 1


def test_a_sync_call_after_an_idle_drop_goes_out_on_a_new_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server pinged and then dropped an idle client before it could answer (one move of
    the clock): the next call finds the end of the stream behind the ping before writing, so
    its request goes out on a new connection instead of failing with an unknown outcome."""
    monkeypatch.setattr(ndb_sync, "KEEPALIVE_CHECK", 1000.0)  # the call, not the keepalive, reads
    clock = VirtualClock()
    with (
        ServerThread(clock=clock, idle_ping=10, idle_timeout=20) as server,
        ndb_sync.NdbClient(clock=clock) as client,
    ):
        assert client.open(server.url)
        client.kv_set({"a": 1})
        clock.advance(25)  # pinged at 10, dropped at 20
        assert client.kv_get(key="a") == 1
