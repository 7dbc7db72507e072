"""Choosing ``max_in_flight`` by measurement.

Many asyncio tasks (``TASKS`` of them) share one ``ndb_transports.asyncio.NdbClient(
max_in_flight=W)``, each awaiting its calls one after the other, for W in 1..256. Throughput is
printed relative to W=1, against the embedded server and the canned server (each in its own
process), and against ``NDB_URL`` if set. The knee is the smallest W reaching 90% of the best
throughput measured for that server.

It writes ``ndb-bench:user:1`` and ``ndb-bench:blob`` (removed from ``NDB_URL`` at the end).
Two workloads: ``kv_set`` of a small object (25-byte reply frames), and ``kv_get`` of a ~900-byte
value. NemesisDB silently drops replies once 128 KiB of output is unread, so the window must keep
W x reply size ≤ 128 KiB; W values beyond that are not run (they could lose replies). Run:
``python bench/bench_window.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import _common as c
import msgspec

from ndb_transports.asyncio import NdbClient

WINDOWS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
TASKS = 256
BACKPRESSURE_LIMIT = 128 * 1024
KNEE_FRACTION = 0.9

BLOB_KEY = "ndb-bench:blob"
BLOB_VALUE = {"blob": "x" * 880}  # the KV_SET stays under the default maxPayload of 1024


def _frame_size(text: str) -> int:
    size = len(text.encode())
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


class Workload:
    def __init__(self, name: str, call: Callable[[NdbClient], Any], reply: dict[str, Any]):
        self.name = name
        self.call = call
        self.reply_text = msgspec.json.encode(reply).decode()
        self.reply_frame = _frame_size(self.reply_text)

    @property
    def max_safe_window(self) -> int:
        return BACKPRESSURE_LIMIT // self.reply_frame


WORKLOADS = [
    Workload(
        "kv_set small object",
        lambda client: client.kv_set({c.BENCH_KEY: c.USER}),
        {"KV_SET_RSP": {"st": 1}},
    ),
    Workload(
        "kv_get ~900 B value",
        lambda client: client.kv_get(key=BLOB_KEY),
        {"KV_GET_RSP": {"keys": {BLOB_KEY: BLOB_VALUE}, "st": 1}},
    ),
]


def seed(url: str) -> None:
    """Store the value the kv_get workload reads (not on the canned server: it only ever
    answers with its one reply)."""

    async def main() -> None:
        client = NdbClient()
        if not await client.open(url):
            raise RuntimeError(f"cannot connect to {url}")
        await client.kv_set({BLOB_KEY: BLOB_VALUE})
        await client.close()

    asyncio.run(main())


def cleanup(url: str) -> None:
    """Remove the benchmark's keys from an external server (``NDB_URL``)."""

    async def main() -> None:
        client = NdbClient()
        if await client.open(url):
            await client.kv_rmv([BLOB_KEY, c.BENCH_KEY])
            await client.close()

    asyncio.run(main())


def run_window(url: str, workload: Workload, window: int, n: int) -> float:
    """Seconds for ``n`` calls spread over TASKS tasks sharing one client with ``window``."""

    async def main() -> float:
        client = NdbClient(max_in_flight=window)
        if not await client.open(url):
            raise RuntimeError(f"cannot connect to {url}")
        try:
            per_task = max(1, n // TASKS)

            async def worker(count: int) -> None:
                for _ in range(count):
                    await workload.call(client)

            await asyncio.gather(*(worker(4) for _ in range(TASKS)))  # warm-up
            start = time.perf_counter()
            await asyncio.gather(*(worker(per_task) for _ in range(TASKS)))
            return (time.perf_counter() - start) / (per_task * TASKS) * n
        finally:
            await client.close()

    return asyncio.run(main())


def main() -> None:
    args = c.parser(__doc__.split("\n\n")[0]).parse_args()
    n_repeats = c.repeats(args, full=3, quick=1)
    n = 2_048 if args.quick else 16_384

    c.title("bench_window: throughput against max_in_flight (asyncio client)")
    print(
        f"{c.describe_machine()}; {TASKS} tasks sharing one client, {n} calls per measurement, "
        f"best of {n_repeats}"
    )
    knees: list[list[str]] = []
    for workload in WORKLOADS:
        print()
        print(
            f"Workload: {workload.name} (reply frame {workload.reply_frame} B; W x reply ≤ "
            f"128 KiB holds up to W = {workload.max_safe_window})"
        )
        starters = [
            c.external_server,
            c.start_embedded,
            lambda w=workload: c.start_canned(w.reply_text),
        ]
        with c.servers(*starters) as running:
            windows = [w for w in WINDOWS if w <= workload.max_safe_window]
            skipped = [w for w in WINDOWS if w > workload.max_safe_window]
            results: dict[str, dict[int, float]] = {}
            externals = [s.url for s in running if s.process is None]
            for server in running:
                if server.note:
                    print(f"  note: {server.note}")
                if server.name != "canned":
                    seed(server.url)
                rows = {
                    w: (lambda s=server, w=w, wl=workload: run_window(s.url, wl, w, n))
                    for w in windows
                }
                best = c.best_of({str(w): fn for w, fn in rows.items()}, n_repeats)
                results[server.name] = {int(w): n / t for w, t in best.items()}
            table_rows = []
            for w in windows:
                row: list[str] = [str(w)]
                for rates in results.values():
                    row += [f"{rates[w] / rates[1]:.2f}x", c.fmt_rate(rates[w])]
                table_rows.append(row)
            table_rows += [
                [str(w)] + ["skipped: W x reply > 128 KiB", ""] * len(results) for w in skipped
            ]
            headers = ["W"]
            for name in results:
                headers += [f"{name} vs W=1", f"{name} ops/s"]
            print(c.table(headers, table_rows))
            for url in externals:
                cleanup(url)
            for name, rates in results.items():
                top = max(rates.values())
                knee = min(w for w, r in rates.items() if r >= KNEE_FRACTION * top)
                best_w = max(rates, key=rates.__getitem__)
                knees.append(
                    [
                        workload.name,
                        name,
                        str(knee),
                        f"{rates[knee] / rates[1]:.2f}x",
                        str(best_w),
                        f"{top / rates[1]:.2f}x",
                    ]
                )
    print()
    print(f"Knee = smallest W reaching {KNEE_FRACTION:.0%} of the best throughput for that server:")
    print(c.table(["workload", "server", "knee W", "knee vs W=1", "best W", "best vs W=1"], knees))


if __name__ == "__main__":
    main()
