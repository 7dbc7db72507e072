"""Client throughput against real servers, beside the limits and a websockets baseline.

For each server (``NDB_URL`` if set, i.e. a real NemesisDB; the embedded server; the canned
server; each in its own process), all rows run in the same run, round-robin, best of N. Every
row stores the same small object under one key (``KV_SET``, 25-byte reply frames):

* limits: a raw blocking socket with a hand-written handshake sending a pre-encoded masked frame
  and waiting for each reply (the round-trip FLOOR); the same socket writing batches of 1000
  frames at once and then reading the 1000 replies (the server's CAPACITY);
* baseline: the ``websockets`` library (asyncio), awaiting each reply before sending the next
  (how NemesisDB's own Python client works), and pipelining batches of 64 (send 64, receive 64);
  both encode and decode each message with msgspec and check ``st``;
* ours: ``await client.kv_set(...)`` one after the other on asyncio and on trio; 64 tasks
  sharing one asyncio client; the blocking client sequentially and from 8 threads;
* diagnosis: the sans-IO core driven by a bare blocking-socket loop (no transport), which
  splits the gap to the floor into the core's CPU and the transport's.

Verdicts are informative only: only a real NemesisDB decides. Run:
``python bench/bench_clients.py [--quick]`` (``NDB_URL=ws://host:1987/`` to add a real server;
it writes and finally removes the key ``ndb-bench:user:1``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import _common as c
import msgspec
import trio
from _rawws import RawClient, masked_text_frame
from websockets.asyncio.client import connect as ws_connect

from ndb_proto import calls
from ndb_proto.client import ClientProtocol, State
from ndb_proto.events import ReplyReceived
from ndb_transports.asyncio import NdbClient as AsyncClient
from ndb_transports.sync import NdbClient as SyncClient
from ndb_transports.trio import NdbClient as TrioClient

CAPACITY_BATCH = 1000  # 1000 replies = 25 KB, far under the 128 KiB backpressure limit
PIPELINE_BATCH = 64  # as the default max_in_flight
TASKS = 64
THREADS = 8

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode

KEYS = {c.BENCH_KEY: c.USER}
WIRE = {"KV_SET": {"keys": KEYS}}
FRAME = masked_text_frame(encode(WIRE))

Row = Callable[[str, int], float]
"""A row: (url, n) -> seconds per operation, for about n operations (setup not timed)."""


# -- limits --------------------------------------------------------------------------------


def raw_floor(url: str, n: int) -> float:
    client = RawClient(url)
    try:
        send, read = client.send, client.read_frames
        for _ in range(50):
            send(FRAME)
            read(1)
        start = time.perf_counter()
        for _ in range(n):
            send(FRAME)
            read(1)
        return (time.perf_counter() - start) / n
    finally:
        client.close()


def raw_capacity(url: str, n: int) -> float:
    client = RawClient(url)
    frames = FRAME * CAPACITY_BATCH
    batches = max(1, n // CAPACITY_BATCH)
    try:
        client.send(frames)
        client.read_frames(CAPACITY_BATCH)
        start = time.perf_counter()
        for _ in range(batches):
            client.send(frames)
            client.read_frames(CAPACITY_BATCH)
        return (time.perf_counter() - start) / (batches * CAPACITY_BATCH)
    finally:
        client.close()


# -- baseline: the websockets library ------------------------------------------------------


def _ws_connect(url: str) -> ws_connect:
    return ws_connect(url, compression=None, max_size=None, proxy=None, ping_interval=None)


def _check(message: bytes | str) -> None:
    if decode(message)["KV_SET_RSP"]["st"] != 1:
        raise RuntimeError(f"unexpected reply {message!r}")


def websockets_awaited(url: str, n: int) -> float:
    async def main() -> float:
        async with _ws_connect(url) as ws:
            for i in range(n + 50):
                if i == 50:
                    start = time.perf_counter()
                await ws.send(encode(WIRE), text=True)
                _check(await ws.recv(decode=False))
            return (time.perf_counter() - start) / n

    return asyncio.run(main())


def websockets_pipelined(url: str, n: int) -> float:
    batches = max(1, n // PIPELINE_BATCH)

    async def main() -> float:
        async with _ws_connect(url) as ws:
            for i in range(batches + 2):
                if i == 2:
                    start = time.perf_counter()
                for _ in range(PIPELINE_BATCH):
                    await ws.send(encode(WIRE), text=True)
                for _ in range(PIPELINE_BATCH):
                    _check(await ws.recv(decode=False))
            return (time.perf_counter() - start) / (batches * PIPELINE_BATCH)

    return asyncio.run(main())


# -- diagnosis: the core with no transport ------------------------------------------------------


def core_on_raw_socket(url: str, n: int) -> float:
    """The sans-IO core driven by the simplest possible loop on a blocking socket: what a
    transport could reach if it cost nothing (the gap to the floor is the core's CPU; the gap
    from here to the transports' rows is theirs)."""
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
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection during the handshake")
            proto.receive_data(data, now())
        proto.events()
        submit, data_to_send = proto.submit, proto.data_to_send
        receive_data, events = proto.receive_data, proto.events
        sendall, recv = sock.sendall, sock.recv
        for i in range(n + 50):
            if i == 50:
                start = time.perf_counter()
            submit(calls.kv_set(KEYS), now() + 10.0)
            sendall(data_to_send())
            while True:
                receive_data(recv(65536), now())
                done = events()
                if done:
                    break
            if not isinstance(done[0], ReplyReceived):
                raise RuntimeError(f"unexpected event {done[0]!r}")  # noqa: TRY004
            proto.next_deadline()
        return (time.perf_counter() - start) / n
    finally:
        sock.close()


# -- ours --------------------------------------------------------------------------------------


def asyncio_sequential(url: str, n: int) -> float:
    async def main() -> float:
        client = AsyncClient()
        if not await client.open(url):
            raise RuntimeError(f"cannot connect to {url}")
        try:
            for _ in range(50):
                await client.kv_set(KEYS)
            start = time.perf_counter()
            for _ in range(n):
                await client.kv_set(KEYS)
            return (time.perf_counter() - start) / n
        finally:
            await client.close()

    return asyncio.run(main())


def asyncio_tasks(url: str, n: int) -> float:
    per_task = max(1, n // TASKS)

    async def main() -> float:
        client = AsyncClient()
        if not await client.open(url):
            raise RuntimeError(f"cannot connect to {url}")

        async def worker(count: int) -> None:
            for _ in range(count):
                await client.kv_set(KEYS)

        try:
            await asyncio.gather(*(worker(4) for _ in range(TASKS)))
            start = time.perf_counter()
            await asyncio.gather(*(worker(per_task) for _ in range(TASKS)))
            return (time.perf_counter() - start) / (per_task * TASKS)
        finally:
            await client.close()

    return asyncio.run(main())


def trio_sequential(url: str, n: int) -> float:
    async def main() -> float:
        async with TrioClient() as client:
            if not await client.open(url):
                raise RuntimeError(f"cannot connect to {url}")
            for _ in range(50):
                await client.kv_set(KEYS)
            start = time.perf_counter()
            for _ in range(n):
                await client.kv_set(KEYS)
            return (time.perf_counter() - start) / n

    return trio.run(main)


def sync_sequential(url: str, n: int) -> float:
    with SyncClient() as client:
        if not client.open(url):
            raise RuntimeError(f"cannot connect to {url}")
        for _ in range(50):
            client.kv_set(KEYS)
        start = time.perf_counter()
        for _ in range(n):
            client.kv_set(KEYS)
        return (time.perf_counter() - start) / n


def sync_threads(url: str, n: int) -> float:
    per_thread = max(1, n // THREADS)
    errors: list[BaseException] = []
    with SyncClient() as client:
        if not client.open(url):
            raise RuntimeError(f"cannot connect to {url}")
        barrier = threading.Barrier(THREADS + 1)

        def worker() -> None:
            try:
                for _ in range(20):
                    client.kv_set(KEYS)
                barrier.wait()
                for _ in range(per_thread):
                    client.kv_set(KEYS)
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed / (per_thread * THREADS)


# name -> (row, pipelined?)
ROWS: dict[str, tuple[Row, bool]] = {
    "limit: raw socket, 1 round trip at a time (FLOOR)": (raw_floor, False),
    f"limit: raw socket, batches of {CAPACITY_BATCH} (CAPACITY)": (raw_capacity, True),
    "baseline: websockets, awaited": (websockets_awaited, False),
    f"baseline: websockets, pipelined {PIPELINE_BATCH}": (websockets_pipelined, True),
    "ours: asyncio sequential": (asyncio_sequential, False),
    "ours: trio sequential": (trio_sequential, False),
    f"ours: asyncio {TASKS} tasks": (asyncio_tasks, True),
    "ours: sync sequential": (sync_sequential, False),
    f"ours: sync {THREADS} threads": (sync_threads, True),
    "diag: ndb_proto core on a bare socket loop": (core_on_raw_socket, False),
}
(FLOOR, CAPACITY, WS_AWAITED, WS_PIPELINED, ASYNC_SEQ, TRIO_SEQ, TASKS_ROW, SYNC_SEQ, _, _) = ROWS


def ratios(rate: dict[str, float]) -> list[c.Ratio]:
    return [
        c.Ratio("asyncio sequential / floor", rate[ASYNC_SEQ] / rate[FLOOR], 0.75),
        c.Ratio("sync sequential / floor", rate[SYNC_SEQ] / rate[FLOOR], 0.85),
        c.Ratio(f"{TASKS} tasks / websockets awaited", rate[TASKS_ROW] / rate[WS_AWAITED], 5.0),
        c.Ratio(f"{TASKS} tasks / websockets pipelined", rate[TASKS_ROW] / rate[WS_PIPELINED], 1.0),
        c.Ratio("trio sequential / asyncio sequential", rate[TRIO_SEQ] / rate[ASYNC_SEQ], 0.8),
    ]


def cleanup(url: str) -> None:
    with SyncClient() as client:
        if client.open(url):
            client.kv_rmv([c.BENCH_KEY])


def main() -> None:
    args = c.parser(__doc__.split("\n\n")[0]).parse_args()
    n_repeats = c.repeats(args, full=5, quick=1)
    n_seq = 300 if args.quick else 4_000
    n_pipe = 2_000 if args.quick else 16_000

    c.title("bench_clients: client throughput against each server")
    print(
        f"{c.describe_machine()}; {n_seq} calls per sequential row, {n_pipe} per pipelined "
        f"row; best of {n_repeats}, rows interleaved"
    )
    summary: list[list[str]] = []
    with c.servers(c.external_server, c.start_embedded, c.start_canned) as running:
        for server in running:
            print()
            print(f"Server: {server.name} ({server.url})")
            if server.note:
                print(f"  note: {server.note}")
            timers = {
                name: (lambda r=row, p=pipelined, u=server.url: r(u, n_pipe if p else n_seq))
                for name, (row, pipelined) in ROWS.items()
            }
            per_op = c.best_of(timers, n_repeats)
            rate = {name: 1 / t for name, t in per_op.items()}
            print(
                c.table(
                    ["row", "ops/s", "vs floor", "vs capacity", "per op"],
                    [
                        [
                            name,
                            c.fmt_rate(rate[name]),
                            f"{rate[name] / rate[FLOOR]:.2f}x",
                            f"{rate[name] / rate[CAPACITY]:.2f}x",
                            c.fmt_ns(per_op[name]),
                        ]
                        for name in ROWS
                    ],
                )
            )
            print()
            server_ratios = ratios(rate)
            print(c.ratio_table(server_ratios))
            summary += [[server.name, *r.row()] for r in server_ratios]
            if server.process is None:
                cleanup(server.url)
    print()
    print("Summary (informative: only a real NemesisDB decides):")
    print(c.table(["server", "ratio", "measured", "target", "verdict"], summary))


if __name__ == "__main__":
    main()
