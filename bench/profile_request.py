"""Where one request's CPU goes: a fixed number of requests of one client row, for profilers.

Runs ``N`` ``kv_set`` requests (after a warm-up) in one of the modes below against a server
(``--url``, or a canned server started in its own process), so that a profiler sees the client
process alone:

* ``core``: the sans-IO core on a bare blocking socket (no transport);
* ``asyncio`` / ``trio``: one request at a time;
* ``asyncio-tasks`` / ``trio-tasks``: 64 tasks sharing one client;
* ``asyncio-floor``: no ndb at all, what any asyncio client pays per round trip: an
  ``asyncio.Protocol`` writing a pre-encoded frame and a task awaiting a future resolved when the
  reply's frame is complete (with a timer pending, as the client always has one);
* ``sync``: the blocking client, one request at a time (``profile_sync.py`` splits it further);
* ``sync-pipeline``: the blocking client's pipelines of 64 requests, one thread.

Two ways to read it:

* instructions per request, independent of the machine's load: run it under callgrind with two
  values of ``-n`` and divide the difference of the totals by the difference of ``n`` (start-up
  and warm-up cancel out)::

      valgrind --tool=callgrind --callgrind-out-file=a.out \
          python bench/profile_request.py trio -n 500
      valgrind --tool=callgrind --callgrind-out-file=b.out \
          python bench/profile_request.py trio -n 1500

  (``bench/callgrind_split.py`` does both runs and splits the difference by library);
* the split by Python layer (adapter, core, codec, event loop...): ``--cprofile`` profiles the
  timed requests and prints each layer's share of the own time (cProfile's overhead is per call,
  so it inflates layers that make many small calls; compare shares, not microseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import socket
import time
from collections.abc import Callable
from typing import Any

import _common as c
import trio
from _rawws import RawClient, frame_extent, masked_text_frame

from ndb_proto import calls
from ndb_proto.client import ClientProtocol, State
from ndb_transports.asyncio import NdbClient as AsyncClient
from ndb_transports.sync import NdbClient as SyncClient
from ndb_transports.trio import NdbClient as TrioClient

KEYS = {c.BENCH_KEY: c.USER}
TASKS = 64
BATCH = 64
"""Requests per pipeline in ``sync-pipeline`` (its ``-n`` is best a multiple of it)."""
WARM = 200

Timed = Callable[[Callable[[], None], Callable[[], None]], None]


def run_core(url: str, n: int, start: Callable[[], None], stop: Callable[[], None]) -> None:
    proto = ClientProtocol(url)
    plan = proto.next_connect(0.0)
    assert plan is not None
    sock = socket.create_connection((plan.endpoint.host, plan.endpoint.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    now = time.monotonic
    try:
        proto.connection_made(plan.endpoint, now())
        sock.sendall(proto.data_to_send())
        while proto.state is not State.OPEN:
            proto.receive_data(sock.recv(65536), now())
        proto.events()
        for i in range(WARM + n):
            if i == WARM:
                start()
            proto.submit(calls.kv_set(KEYS), now() + 10.0)
            sock.sendall(proto.data_to_send())
            while True:
                proto.receive_data(sock.recv(65536), now())
                if proto.events():
                    break
            proto.next_deadline()
        stop()
    finally:
        sock.close()


def run_asyncio(url: str, n: int, start: Callable[[], None], stop: Callable[[], None]) -> None:
    async def main() -> None:
        client = AsyncClient()
        assert await client.open(url)
        try:
            for _ in range(WARM):
                await client.kv_set(KEYS)
            start()
            for _ in range(n):
                await client.kv_set(KEYS)
            stop()
        finally:
            await client.close()

    asyncio.run(main())


def run_asyncio_tasks(
    url: str, n: int, start: Callable[[], None], stop: Callable[[], None]
) -> None:
    async def main() -> None:
        client = AsyncClient()
        assert await client.open(url)

        async def worker(count: int) -> None:
            for _ in range(count):
                await client.kv_set(KEYS)

        try:
            await asyncio.gather(*(worker(WARM // TASKS + 1) for _ in range(TASKS)))
            start()
            await asyncio.gather(*(worker(n // TASKS) for _ in range(TASKS)))
            stop()
        finally:
            await client.close()

    asyncio.run(main())


def run_asyncio_floor(
    url: str, n: int, start: Callable[[], None], stop: Callable[[], None]
) -> None:
    raw = RawClient(url)  # connected and upgraded on a blocking socket, then handed to asyncio
    frame = masked_text_frame(calls.kv_set(KEYS).payload)

    class Replies(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = bytearray(raw.buffer)
            self.waiter: asyncio.Future[None] | None = None

        def data_received(self, data: bytes) -> None:
            buffer = self.buffer
            buffer += data
            extent = frame_extent(buffer, 0)
            if extent is not None:
                del buffer[: extent[1]]
                if self.waiter is not None:
                    self.waiter.set_result(None)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        raw.sock.setblocking(False)
        transport, protocol = await loop.create_connection(Replies, sock=raw.sock)
        timer = loop.call_at(loop.time() + 3600.0, lambda: None)
        for i in range(WARM + n):
            if i == WARM:
                start()
            protocol.waiter = loop.create_future()
            transport.write(frame)
            await protocol.waiter
        stop()
        timer.cancel()
        transport.close()

    asyncio.run(main())


def run_trio(url: str, n: int, start: Callable[[], None], stop: Callable[[], None]) -> None:
    async def main() -> None:
        async with TrioClient() as client:
            assert await client.open(url)
            for _ in range(WARM):
                await client.kv_set(KEYS)
            start()
            for _ in range(n):
                await client.kv_set(KEYS)
            stop()

    trio.run(main)


def run_trio_tasks(url: str, n: int, start: Callable[[], None], stop: Callable[[], None]) -> None:
    async def main() -> None:
        async with TrioClient() as client:
            assert await client.open(url)

            async def worker(count: int) -> None:
                for _ in range(count):
                    await client.kv_set(KEYS)

            async def run(count: int) -> None:
                async with trio.open_nursery() as nursery:
                    for _ in range(TASKS):
                        nursery.start_soon(worker, count)

            await run(WARM // TASKS + 1)
            start()
            await run(n // TASKS)
            stop()

    trio.run(main)


def run_sync(url: str, n: int, start: Callable[[], None], stop: Callable[[], None]) -> None:
    with SyncClient() as client:
        assert client.open(url)
        for _ in range(WARM):
            client.kv_set(KEYS)
        start()
        for _ in range(n):
            client.kv_set(KEYS)
        stop()


def run_sync_pipeline(
    url: str, n: int, start: Callable[[], None], stop: Callable[[], None]
) -> None:
    def batches(count: int) -> None:
        for _ in range(count):
            with client.pipeline() as pipe:
                for _ in range(BATCH):
                    pipe.kv_set(KEYS)
                pipe.execute()

    with SyncClient() as client:
        assert client.open(url)
        batches(WARM // BATCH + 1)
        start()
        batches(n // BATCH)
        stop()


MODES = {
    "core": run_core,
    "asyncio": run_asyncio,
    "asyncio-tasks": run_asyncio_tasks,
    "asyncio-floor": run_asyncio_floor,
    "trio": run_trio,
    "trio-tasks": run_trio_tasks,
    "sync": run_sync,
    "sync-pipeline": run_sync_pipeline,
}

LAYERS = [
    # (layer, path fragment); the first that matches names a function's layer.
    ("adapter (ndb_transports)", f"ndb_transports{os.sep}"),
    ("core: client", f"ndb_proto{os.sep}client.py"),
    ("core: channel + frames", f"ndb_proto{os.sep}channel.py"),
    ("core: channel + frames", f"ndb_proto{os.sep}frames.py"),
    ("core: pipeline", f"ndb_proto{os.sep}pipeline.py"),
    ("core: calls + validate + codec", f"ndb_proto{os.sep}"),
    ("asyncio event loop", f"asyncio{os.sep}"),
    ("trio event loop", f"trio{os.sep}"),
    ("trio event loop", f"outcome{os.sep}"),
    ("trio event loop", f"sniffio{os.sep}"),
    ("this script", "profile_request.py"),
]


def layer_of(filename: str, name: str) -> str:
    for layer, part in LAYERS:
        if part in filename:
            return layer
    if "msgspec" in name:
        return "msgspec (C)"
    if any(word in name for word in ("socket", "send", "recv", "poll", "select", "epoll")):
        return "socket / poll builtins (syscalls)"
    return "other builtins"


def split(profile: cProfile.Profile, n: int) -> str:
    stats = pstats.Stats(profile)
    own: dict[str, float] = {}
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        layer = layer_of(filename, name)
        own[layer] = own.get(layer, 0.0) + row[2]
    total = sum(own.values())
    rows = [
        [layer, f"{100 * t / total:.1f}%", c.fmt_ns(t / n)]
        for layer, t in sorted(own.items(), key=lambda item: -item[1])
    ]
    rows.append(["total (under cProfile)", "100%", c.fmt_ns(total / n)])
    return c.table(["layer", "share of own time", "per request"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=MODES)
    p.add_argument("-n", type=int, default=2000, help="timed requests")
    p.add_argument("--url", help="a running server (default: start a canned server)")
    p.add_argument("--cprofile", action="store_true", help="print the split by layer")
    p.add_argument("--dump", help="also write the cProfile stats to this file")
    args = p.parse_args()
    run: Any = MODES[args.mode]
    with c.servers(c.start_canned) if args.url is None else _external(args.url) as running:
        url = running[0].url
        profile = cProfile.Profile(time.process_time) if args.cprofile else None
        times: dict[str, float] = {}

        def start() -> None:
            times["wall"] = time.perf_counter()
            times["cpu"] = time.process_time()
            if profile is not None:
                profile.enable()

        def stop() -> None:
            if profile is not None:
                profile.disable()
            times["cpu"] = time.process_time() - times["cpu"]
            times["wall"] = time.perf_counter() - times["wall"]

        run(url, args.n, start, stop)
    cpu, wall = (c.fmt_ns(times[what] / args.n) for what in ("cpu", "wall"))
    print(f"{args.mode}: {args.n} requests, process CPU {cpu}/request, wall {wall}/request")
    if profile is not None:
        print(split(profile, args.n))
        if args.dump:
            profile.dump_stats(args.dump)


class _external:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> list[c.ServerProcess]:
        return [c.ServerProcess("given", self.url, None)]

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
