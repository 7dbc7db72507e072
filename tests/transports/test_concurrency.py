"""One client shared by many tasks (64 asyncio / 64 trio tasks) or threads (8): every caller
gets its own replies, requests are really pipelined, and the window is respected."""

from __future__ import annotations

from typing import Any

from ndb_proto.errors import ClientClosedError
from ndb_server.thread import ServerThread
from tests.transports.flavours import Flavour
from tests.transports.proxy import C2S, S2C, Proxy


def workers(flavour: Flavour) -> int:
    return 8 if flavour.is_sync else 64


def max_outstanding(proxy: Proxy) -> int:
    """The most requests seen written and not yet answered at once, from the proxy's view
    (it sees a request before the server does and forwards a reply before the client sees it,
    so this never undercounts what the client had in flight)."""
    outstanding = peak = 0
    for frame in list(proxy.frames):
        if frame.opcode != 1:
            continue
        outstanding += 1 if frame.direction == C2S else -1
        peak = max(peak, outstanding)
    return peak


def test_many_callers_share_one_client(flavour: Flavour, proxy: Proxy) -> None:
    count = workers(flavour)
    rounds = 15

    async def worker(c: Any, n: int) -> int:
        session = await c.sh_create()
        for r in range(rounds):
            value = {"worker": n, "round": r}
            await c.kv_set({f"w{n}": value})
            assert await c.kv_get(key=f"w{n}") == value
            assert await c.kv_get([f"w{n}", "absent"]) == {f"w{n}": value}
            await session.set({"r": r})
            assert await session.get(key="r") == r
            assert await c.kv_contains([f"w{n}"]) == [f"w{n}"]
        return n

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            outcomes = await flavour.gather(*[lambda n=n: worker(c, n) for n in range(count)])
            assert [o.unwrap() for o in outcomes] == list(range(count))
            assert await c.kv_count() == count
            assert (await c.sh_info_all())["totalSessions"] == count
            assert len(proxy.accepted) == 1
            assert max_outstanding(proxy) > 1  # pipelined, not one at a time

    flavour.run(main)


def test_requests_are_pipelined(flavour: Flavour, proxy: Proxy) -> None:
    """With the replies held back, every caller's request is written anyway: many requests are
    on the wire before the first reply comes back."""
    count = workers(flavour)

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({f"k{n}": n for n in range(count)})
            replies_before = len(proxy.texts(S2C))
            proxy.stall()
            # KV_CONTAINS: its reply is bounded by its request (a GET's is not, and nothing is
            # written behind an unanswered GET, since NemesisDB drops replies past 128 KiB).
            async with flavour.group() as group:
                outcomes = [group.start(c.kv_contains, [f"k{n}"]) for n in range(count)]
                await flavour.until(lambda: len(proxy.texts(C2S)) == count + 1)
                assert len(proxy.texts(S2C)) == replies_before  # no reply has come back
                proxy.resume()
            assert [o.unwrap() for o in outcomes] == [[f"k{n}"] for n in range(count)]

    flavour.run(main)


def test_window_limits_requests_in_flight(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url, max_in_flight=3) as c:
            proxy.stall()
            async with flavour.group() as group:
                outcomes = [group.start(c.kv_set, {f"k{n}": n}) for n in range(10)]
                await flavour.until(lambda: len(proxy.texts(C2S)) == 3)
                await flavour.sleep(0.2)
                assert len(proxy.texts(C2S)) == 3
                proxy.resume()
            assert [o.unwrap() for o in outcomes] == [None] * 10
            for _ in range(3):
                await flavour.gather(*[lambda n=n: c.kv_get(key=f"k{n}") for n in range(10)])
            assert max_outstanding(proxy) == 3
            assert await c.kv_count() == 10

    flavour.run(main)


def test_many_clients_one_server(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        clients = [flavour.client() for _ in range(4)]
        for client in clients:
            assert await client.open(ndb_server.url)

        async def use(n: int) -> None:
            client = clients[n % 4]
            await client.kv_set({f"c{n}": n})
            assert await client.kv_get(key=f"c{n}") == n

        outcomes = await flavour.gather(*[lambda n=n: use(n) for n in range(16)])
        assert all(o.error is None for o in outcomes), outcomes
        assert await clients[0].kv_count() == 16
        for client in clients:
            await client.close()

    flavour.run(main)


def test_close_during_traffic(flavour: Flavour, ndb_server: ServerThread) -> None:
    """Closing while many callers are busy: each call either completes with its own result or
    fails with ClientClosedError; nothing hangs and nothing else is raised."""
    count = workers(flavour)

    progress = [0]

    async def worker(c: Any, n: int) -> int:
        done = 0
        try:
            for r in range(100_000):
                await c.kv_set({f"w{n}": r})
                assert await c.kv_get(key=f"w{n}") == r
                done += 1
                progress[0] += 1
        except ClientClosedError:
            return done
        raise AssertionError("never closed")

    async def main() -> None:
        c = flavour.client()
        assert await c.open(ndb_server.url)
        async with flavour.group() as group:
            outcomes = [group.start(worker, c, n) for n in range(count)]
            await flavour.until(lambda: progress[0] >= 2 * count, timeout=10.0)
            await flavour.within(5.0, c.close())
        assert all(o.error is None for o in outcomes), [o for o in outcomes if o.error]
        assert sum(o.value for o in outcomes) > 0
        assert not c.is_connected()

    flavour.run(main)
