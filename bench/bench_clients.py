"""Client throughput and CPU against real servers, beside the limits and a websockets baseline.

For each server (``NDB_URL`` if set, i.e. a real NemesisDB; the embedded server; the canned
server; each in its own process), all rows run in the same run, round-robin, best of N. Most rows
store the same small object under one key (``KV_SET``, 25-byte reply frames):

* limits: a raw blocking socket with a hand-written handshake sending a pre-encoded masked frame
  and waiting for each reply (the round-trip FLOOR); eight such sockets in eight threads; the
  same socket writing batches of 1000 frames at once and then reading the 1000 replies (the
  server's CAPACITY);
* baseline: the ``websockets`` library (asyncio), awaiting each reply before sending the next
  (how NemesisDB's own Python client works), and pipelining batches of 64 (send 64, receive 64);
  both encode and decode each message with msgspec and check ``st``;
* ours: asyncio and trio, sequential and 64 tasks sharing one client; the blocking client
  sequentially, shared by 8 threads, one client per thread in 8 threads, and pipelines of 64
  from one thread (sync and asyncio);
* 8 KB replies: ``kv_get`` of an 8 KB value, 64 in flight, ours (64 asyncio tasks, sync
  pipelines of 64; by default, and declaring a ``read_reply_limit`` that lets reads pipeline)
  against websockets pipelining the same requests;
* diagnosis: the sans-IO core driven by a bare blocking-socket loop (no transport), which
  splits the gap to the floor into the core's CPU and the transport's.

Every row prints its wall time per request and the process CPU per request (all threads of this
process; the servers run in their own processes), so the cost of each adapter shows directly.
Verdicts are informative only: only a real NemesisDB decides. Run:
``python bench/bench_clients.py [--quick] [--only SUBSTRING]`` (``NDB_URL=ws://host:1987/`` to
add a real server; it writes and finally removes the keys ``ndb-bench:user:1`` and
``ndb-bench:blob``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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

BLOB_KEY = "ndb-bench:blob"
BLOB_PIECES = ["x" * 900] * 9
"""The 8 KB value, stored as an array appended piece by piece (a server's maxPayload is 1 KiB)."""
BLOB_REPLY = json.dumps(
    {"KV_GET_RSP": {"st": 1, "keys": {BLOB_KEY: BLOB_PIECES}}}, separators=(",", ":")
)
BLOB_WIRE = {"KV_GET": {"keys": [BLOB_KEY]}}
BLOB_WINDOW = 11
"""Unanswered 8 KB replies a hand-pipelined client can afford: 11 x 8.2 KB stays under the
96 KiB that ndb's reply budget allows by default (NemesisDB drops replies past 128 KiB)."""
BLOB_LIMIT = len(BLOB_REPLY) + 100
"""The ``read_reply_limit`` of the rows that declare one: the 8 KB reply and some room (11 fit
the default reply budget, as many as the hand-pipelined baseline keeps in flight)."""
ROW_TIMEOUT = 120.0


@dataclass
class Cost:
    """What one request cost: wall time and process CPU time (all threads), in seconds."""

    wall: float
    cpu: float


class Clock:
    """Wall and process CPU time from `start` to `per_op`."""

    def start(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def per_op(self, n: int) -> Cost:
        wall = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        return Cost(wall / n, cpu / n)


Row = Callable[[str, int], Cost]
"""A row: (url, n) -> cost per operation, for about n operations (setup not timed)."""


# -- limits --------------------------------------------------------------------------------


def raw_floor(url: str, n: int) -> Cost:
    client = RawClient(url)
    clock = Clock()
    try:
        send, read = client.send, client.read_frames
        for _ in range(50):
            send(FRAME)
            read(1)
        clock.start()
        for _ in range(n):
            send(FRAME)
            read(1)
        return clock.per_op(n)
    finally:
        client.close()


def raw_capacity(url: str, n: int) -> Cost:
    client = RawClient(url)
    frames = FRAME * CAPACITY_BATCH
    batches = max(1, n // CAPACITY_BATCH)
    clock = Clock()
    try:
        client.send(frames)
        client.read_frames(CAPACITY_BATCH)
        clock.start()
        for _ in range(batches):
            client.send(frames)
            client.read_frames(CAPACITY_BATCH)
        return clock.per_op(batches * CAPACITY_BATCH)
    finally:
        client.close()


def in_threads(n: int, setup: Callable[[], Any], work: Callable[[Any], None], warm: int) -> Cost:
    """``THREADS`` threads, each with ``setup()``'s object, calling ``work(obj)`` ``warm``
    times (not timed) and then n / THREADS times; the clock runs from the moment all are
    ready until the last one ends."""
    per_thread = max(1, n // THREADS)
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS + 1)

    def worker(obj: Any) -> None:
        try:
            for _ in range(warm):
                work(obj)
            barrier.wait()
            for _ in range(per_thread):
                work(obj)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    objs = [setup() for _ in range(THREADS)]
    threads = [threading.Thread(target=worker, args=(obj,)) for obj in objs]
    for thread in threads:
        thread.start()
    clock = Clock()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    clock.start()
    for thread in threads:
        thread.join()
    cost = clock.per_op(per_thread * THREADS)
    if errors:
        raise errors[0]
    return cost


def raw_threads(url: str, n: int) -> Cost:
    clients: list[RawClient] = []

    def setup() -> RawClient:
        clients.append(RawClient(url))
        return clients[-1]

    def work(client: RawClient) -> None:
        client.send(FRAME)
        client.read_frames(1)

    try:
        return in_threads(n, setup, work, 50)
    finally:
        for client in clients:
            client.close()


# -- baseline: the websockets library ------------------------------------------------------


def _ws_connect(url: str) -> ws_connect:
    return ws_connect(url, compression=None, max_size=None, proxy=None, ping_interval=None)


def _check(message: bytes | str, name: str = "KV_SET_RSP") -> None:
    if decode(message)[name]["st"] != 1:
        raise RuntimeError(f"unexpected reply {message!r}")


def websockets_awaited(url: str, n: int) -> Cost:
    async def main() -> Cost:
        clock = Clock()
        async with _ws_connect(url) as ws:
            for i in range(n + 50):
                if i == 50:
                    clock.start()
                await ws.send(encode(WIRE), text=True)
                _check(await ws.recv(decode=False))
            return clock.per_op(n)

    return asyncio.run(main())


def _websockets_pipelined(url: str, n: int, wire: dict[str, Any], reply: str, window: int) -> Cost:
    """Batches of 64 requests, at most ``window`` of them unanswered at any time."""
    batches = max(1, n // PIPELINE_BATCH)

    async def main() -> Cost:
        clock = Clock()
        async with _ws_connect(url) as ws:
            for i in range(batches + 2):
                if i == 2:
                    clock.start()
                sent = received = 0
                while received < PIPELINE_BATCH:
                    while sent < PIPELINE_BATCH and sent - received < window:
                        await ws.send(encode(wire), text=True)
                        sent += 1
                    _check(await ws.recv(decode=False), reply)
                    received += 1
            return clock.per_op(batches * PIPELINE_BATCH)

    return asyncio.run(asyncio.wait_for(main(), ROW_TIMEOUT))


def websockets_pipelined(url: str, n: int) -> Cost:
    """Send 64, then receive 64."""
    return _websockets_pipelined(url, n, WIRE, "KV_SET_RSP", PIPELINE_BATCH)


def websockets_pipelined_blob(url: str, n: int) -> Cost:
    """Batches of 64 8 KB gets, at most BLOB_WINDOW unanswered: 64 unread 8 KB replies would
    pass the server's 128 KiB limit, and NemesisDB would silently drop replies (the run would
    hang), so this is the most a hand-pipelined client can safely keep in flight."""
    return _websockets_pipelined(url, n, BLOB_WIRE, "KV_GET_RSP", BLOB_WINDOW)


# -- diagnosis: the core with no transport ------------------------------------------------------


def core_on_raw_socket(url: str, n: int) -> Cost:
    """The sans-IO core driven by the simplest possible loop on a blocking socket: what a
    transport could reach if it cost nothing (the gap to the floor is the core's CPU; the gap
    from here to the transports' rows is theirs)."""
    proto = ClientProtocol(url)
    plan = proto.next_connect(0.0)
    assert plan is not None
    sock = socket.create_connection((plan.endpoint.host, plan.endpoint.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    now = time.monotonic
    clock = Clock()
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
                clock.start()
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
        return clock.per_op(n)
    finally:
        sock.close()


# -- ours: asyncio and trio --------------------------------------------------------------------


def asyncio_sequential(url: str, n: int) -> Cost:
    async def main() -> Cost:
        client = AsyncClient()
        if not await client.open(url):
            raise RuntimeError(f"cannot connect to {url}")
        clock = Clock()
        try:
            for _ in range(50):
                await client.kv_set(KEYS)
            clock.start()
            for _ in range(n):
                await client.kv_set(KEYS)
            return clock.per_op(n)
        finally:
            await client.close()

    return asyncio.run(main())


def _asyncio_tasks(url: str, n: int, call: Callable[[AsyncClient], Any], **options: Any) -> Cost:
    per_task = max(1, n // TASKS)

    async def main() -> Cost:
        client = AsyncClient(**options)
        if not await client.open(url):
            raise RuntimeError(f"cannot connect to {url}")

        async def worker(count: int) -> None:
            for _ in range(count):
                await call(client)

        clock = Clock()
        try:
            await asyncio.gather(*(worker(4) for _ in range(TASKS)))
            clock.start()
            await asyncio.gather(*(worker(per_task) for _ in range(TASKS)))
            return clock.per_op(per_task * TASKS)
        finally:
            await client.close()

    return asyncio.run(main())


def asyncio_tasks(url: str, n: int) -> Cost:
    return _asyncio_tasks(url, n, lambda client: client.kv_set(KEYS))


def asyncio_tasks_blob(url: str, n: int) -> Cost:
    return _asyncio_tasks(url, n, lambda client: client.kv_get([BLOB_KEY]))


def asyncio_tasks_blob_limit(url: str, n: int) -> Cost:
    return _asyncio_tasks(
        url, n, lambda client: client.kv_get([BLOB_KEY]), read_reply_limit=BLOB_LIMIT
    )


def asyncio_pipeline(url: str, n: int) -> Cost:
    batches = max(1, n // PIPELINE_BATCH)

    async def main() -> Cost:
        client = AsyncClient()
        if not await client.open(url):
            raise RuntimeError(f"cannot connect to {url}")
        clock = Clock()
        try:
            for i in range(batches + 2):
                if i == 2:
                    clock.start()
                pipe = client.pipeline()
                for _ in range(PIPELINE_BATCH):
                    pipe.kv_set(KEYS)
                await pipe.execute()
            return clock.per_op(batches * PIPELINE_BATCH)
        finally:
            await client.close()

    return asyncio.run(main())


def trio_sequential(url: str, n: int) -> Cost:
    async def main() -> Cost:
        async with TrioClient() as client:
            if not await client.open(url):
                raise RuntimeError(f"cannot connect to {url}")
            clock = Clock()
            for _ in range(50):
                await client.kv_set(KEYS)
            clock.start()
            for _ in range(n):
                await client.kv_set(KEYS)
            return clock.per_op(n)

    return trio.run(main)


def trio_tasks(url: str, n: int) -> Cost:
    per_task = max(1, n // TASKS)

    async def main() -> Cost:
        async with TrioClient() as client:
            if not await client.open(url):
                raise RuntimeError(f"cannot connect to {url}")

            async def worker(count: int) -> None:
                for _ in range(count):
                    await client.kv_set(KEYS)

            async def run(count: int) -> None:
                async with trio.open_nursery() as nursery:
                    for _ in range(TASKS):
                        nursery.start_soon(worker, count)

            clock = Clock()
            await run(4)
            clock.start()
            await run(per_task)
            return clock.per_op(per_task * TASKS)

    return trio.run(main)


# -- ours: blocking --------------------------------------------------------------------------


def _open_sync(url: str, **options: Any) -> SyncClient:
    client = SyncClient(**options)
    if not client.open(url):
        raise RuntimeError(f"cannot connect to {url}")
    return client


def sync_sequential(url: str, n: int) -> Cost:
    with _open_sync(url) as client:
        for _ in range(50):
            client.kv_set(KEYS)
        clock = Clock()
        clock.start()
        for _ in range(n):
            client.kv_set(KEYS)
        return clock.per_op(n)


def sync_shared(url: str, n: int) -> Cost:
    with _open_sync(url) as client:
        return in_threads(n, lambda: client, lambda shared: shared.kv_set(KEYS), 20)


def sync_one_each(url: str, n: int) -> Cost:
    clients: list[SyncClient] = []

    def setup() -> SyncClient:
        clients.append(_open_sync(url))
        return clients[-1]

    try:
        return in_threads(n, setup, lambda own: own.kv_set(KEYS), 20)
    finally:
        for client in clients:
            client.close()


def _sync_pipeline(url: str, n: int, add: Callable[[Any], None], **options: Any) -> Cost:
    batches = max(1, n // PIPELINE_BATCH)
    with _open_sync(url, **options) as client:
        clock = Clock()
        for i in range(batches + 2):
            if i == 2:
                clock.start()
            with client.pipeline() as pipe:
                for _ in range(PIPELINE_BATCH):
                    add(pipe)
                pipe.execute()
        return clock.per_op(batches * PIPELINE_BATCH)


def sync_pipeline(url: str, n: int) -> Cost:
    return _sync_pipeline(url, n, lambda pipe: pipe.kv_set(KEYS))


def sync_pipeline_blob(url: str, n: int) -> Cost:
    return _sync_pipeline(url, n, lambda pipe: pipe.kv_get([BLOB_KEY]))


def sync_pipeline_blob_limit(url: str, n: int) -> Cost:
    return _sync_pipeline(url, n, lambda pipe: pipe.kv_get([BLOB_KEY]), read_reply_limit=BLOB_LIMIT)


# -- the table --------------------------------------------------------------------------------

FLOOR = "limit: raw socket, 1 round trip at a time (FLOOR)"
CAPACITY = f"limit: raw socket, batches of {CAPACITY_BATCH} (CAPACITY)"
RAW_THREADS = f"limit: {THREADS} threads, a raw socket each"
WS_AWAITED = "baseline: websockets, awaited"
WS_PIPELINED = f"baseline: websockets, pipelined {PIPELINE_BATCH}"
ASYNC_SEQ = "ours: asyncio sequential"
ASYNC_TASKS = f"ours: asyncio {TASKS} tasks"
ASYNC_PIPE = f"ours: asyncio pipeline of {PIPELINE_BATCH}"
TRIO_SEQ = "ours: trio sequential"
TRIO_TASKS = f"ours: trio {TASKS} tasks"
SYNC_SEQ = "ours: sync sequential"
SYNC_SHARED = f"ours: sync, one client shared by {THREADS} threads"
SYNC_EACH = f"ours: sync, {THREADS} threads with a client each"
SYNC_PIPE = f"ours: sync pipeline of {PIPELINE_BATCH}, one thread"
CORE = "diag: ndb_proto core on a bare socket loop"
BLOB_WS = f"8 KB kv_get: websockets, pipelined {PIPELINE_BATCH}"
BLOB_TASKS = f"8 KB kv_get: ours, asyncio {TASKS} tasks"
BLOB_SYNC = f"8 KB kv_get: ours, sync pipeline of {PIPELINE_BATCH}"
BLOB_TASKS_LIMIT = f"8 KB kv_get: ours, asyncio {TASKS} tasks, read_reply_limit"
BLOB_SYNC_LIMIT = f"8 KB kv_get: ours, sync pipeline of {PIPELINE_BATCH}, read_reply_limit"

# name -> (row, pipelined?, 8 KB replies?)
ROWS: dict[str, tuple[Row, bool, bool]] = {
    FLOOR: (raw_floor, False, False),
    CAPACITY: (raw_capacity, True, False),
    RAW_THREADS: (raw_threads, True, False),
    WS_AWAITED: (websockets_awaited, False, False),
    WS_PIPELINED: (websockets_pipelined, True, False),
    ASYNC_SEQ: (asyncio_sequential, False, False),
    ASYNC_TASKS: (asyncio_tasks, True, False),
    ASYNC_PIPE: (asyncio_pipeline, True, False),
    TRIO_SEQ: (trio_sequential, False, False),
    TRIO_TASKS: (trio_tasks, True, False),
    SYNC_SEQ: (sync_sequential, False, False),
    SYNC_SHARED: (sync_shared, True, False),
    SYNC_EACH: (sync_one_each, True, False),
    SYNC_PIPE: (sync_pipeline, True, False),
    CORE: (core_on_raw_socket, False, False),
    BLOB_WS: (websockets_pipelined_blob, True, True),
    BLOB_TASKS: (asyncio_tasks_blob, True, True),
    BLOB_SYNC: (sync_pipeline_blob, True, True),
    BLOB_TASKS_LIMIT: (asyncio_tasks_blob_limit, True, True),
    BLOB_SYNC_LIMIT: (sync_pipeline_blob_limit, True, True),
}


def ratios(rate: dict[str, float]) -> list[c.Ratio]:
    def r(name: str, top: str, bottom: str, target: float) -> c.Ratio:
        value = rate.get(top, float("nan")) / rate.get(bottom, float("nan"))
        return c.Ratio(name, value, target)

    return [
        r("sync sequential / floor", SYNC_SEQ, FLOOR, 0.85),
        r("asyncio sequential / floor", ASYNC_SEQ, FLOOR, 0.75),
        r("trio sequential / asyncio sequential", TRIO_SEQ, ASYNC_SEQ, 0.85),
        r(f"sync shared by {THREADS} threads / sync sequential", SYNC_SHARED, SYNC_SEQ, 3.0),
        r(
            f"sync shared by {THREADS} threads / {THREADS} raw sockets",
            SYNC_SHARED,
            RAW_THREADS,
            0.8,
        ),
        r(f"{THREADS} sync clients / {THREADS} raw sockets", SYNC_EACH, RAW_THREADS, 0.8),
        r(f"asyncio {TASKS} tasks / websockets awaited", ASYNC_TASKS, WS_AWAITED, 5.0),
        r(f"asyncio {TASKS} tasks / websockets pipelined", ASYNC_TASKS, WS_PIPELINED, 1.2),
        r(f"trio {TASKS} tasks / asyncio {TASKS} tasks", TRIO_TASKS, ASYNC_TASKS, 0.9),
        r(
            f"sync pipeline of {PIPELINE_BATCH} / asyncio {TASKS} tasks",
            SYNC_PIPE,
            ASYNC_TASKS,
            0.8,
        ),
        r("8 KB kv_get: asyncio tasks / websockets pipelined", BLOB_TASKS, BLOB_WS, 0.8),
        r(
            "8 KB kv_get, read_reply_limit: asyncio tasks / websockets pipelined",
            BLOB_TASKS_LIMIT,
            BLOB_WS,
            0.8,
        ),
    ]


def store_blob(url: str) -> None:
    """Store the 8 KB value on a real server, in pieces under its 1 KiB maxPayload."""
    with _open_sync(url) as client:
        client.kv_set({BLOB_KEY: []})
        for piece in BLOB_PIECES:
            client.kv_arr_append(BLOB_KEY, [piece])


def cleanup(url: str) -> None:
    with SyncClient() as client:
        if client.open(url):
            client.kv_rmv([c.BENCH_KEY, BLOB_KEY])


def measure(
    rows: dict[str, tuple[Row, bool, bool]],
    url: str,
    blob_url: str,
    n_seq: int,
    n_pipe: int,
    n_repeats: int,
) -> dict[str, Cost]:
    """Every row, round-robin, best (by wall time) of ``n_repeats``; a row that fails (say, a
    client without pipelines) is reported and left out."""
    best: dict[str, Cost] = {}
    failed: set[str] = set()
    for _ in range(n_repeats):
        for name, (row, pipelined, blob) in rows.items():
            if name in failed:
                continue
            try:
                cost = row(blob_url if blob else url, n_pipe if pipelined else n_seq)
            except Exception as exc:  # a bench row reports, never stops the run
                print(f"  {name}: failed: {exc!r}")
                failed.add(name)
                continue
            if name not in best or cost.wall < best[name].wall:
                best[name] = cost
    return best


def report(names: Sequence[str], cost: dict[str, Cost]) -> str:
    rate = {name: 1 / cost[name].wall for name in names if name in cost}
    floor = rate.get(FLOOR, float("nan"))
    lines = []
    for name in names:
        if name not in cost:
            lines.append([name, "failed", "", "", ""])
            continue
        lines.append(
            [
                name,
                c.fmt_rate(rate[name]),
                f"{rate[name] / floor:.2f}x",
                c.fmt_ns(cost[name].wall),
                c.fmt_ns(cost[name].cpu),
            ]
        )
    return c.table(["row", "ops/s", "vs floor", "wall per op", "CPU per op"], lines)


def main() -> None:
    p = c.parser(__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", default=[], help="run the rows whose name has it")
    args = p.parse_args()
    n_repeats = c.repeats(args, full=5, quick=1)
    n_seq = 300 if args.quick else 4_000
    n_pipe = 2_000 if args.quick else 16_000
    rows = {
        name: spec
        for name, spec in ROWS.items()
        if not args.only or name == FLOOR or any(part in name for part in args.only)
    }

    c.title("bench_clients: client throughput and CPU against each server")
    print(
        f"{c.describe_machine()}; {n_seq} calls per sequential row, {n_pipe} per pipelined "
        f"row; best of {n_repeats}, rows interleaved"
    )
    summary: list[list[str]] = []
    with (
        c.servers(c.external_server, c.start_embedded, c.start_canned) as running,
        c.servers(lambda: c.start_canned(BLOB_REPLY)) as (canned_blob,),
    ):
        for server in running:
            print()
            print(f"Server: {server.name} ({server.url})")
            if server.note:
                print(f"  note: {server.note}")
            blob_url = canned_blob.url if server.name == "canned" else server.url
            if server.name != "canned":
                store_blob(server.url)
            cost = measure(rows, server.url, blob_url, n_seq, n_pipe, n_repeats)
            print(report(list(rows), cost))
            print()
            server_ratios = ratios({name: 1 / cost[name].wall for name in cost})
            print(c.ratio_table(server_ratios))
            summary += [[server.name, *r.row()] for r in server_ratios]
            if server.process is None:
                cleanup(server.url)
    print()
    print("Summary (informative: only a real NemesisDB decides):")
    print(c.table(["server", "ratio", "measured", "target", "verdict"], summary))


if __name__ == "__main__":
    main()
