"""The embedded server's throughput, beside a trivial ``websockets`` server, in the same run.

Three servers, each in its own process:

* embedded: ``python -m ndb_server --port 0``, doing real KV_SET work;
* echo baseline: ``bench/ws_const_server.py``, a trivial server on the ``websockets`` library
  that answers each message with the constant ``{"KV_SET_RSP":{"st":1}}``. (Not a literal echo:
  our client checks reply names and would reject its own ``KV_SET`` sent back. It does what an
  echo server does, read a message and write one, with the cheapest reply.)
* canned: ``bench/canned_server.py``, hand-written framing, no parsing: the ceiling.

Each is driven by our asyncio client, sequentially (one call at a time) and pipelined (64 tasks
sharing one client), and by a raw socket (one round trip at a time; batches of 1000), all rows
interleaved, best of N. Target: the embedded server within 1.5x of the echo baseline for one
sequential client (echo ops/s ÷ embedded ops/s ≤ 1.5). Run: ``python bench/bench_server.py
[--quick]``.
"""

from __future__ import annotations

import _common as c
from bench_clients import (
    CAPACITY_BATCH,
    TASKS,
    Row,
    asyncio_sequential,
    asyncio_tasks,
    raw_capacity,
    raw_floor,
)

TARGET = 1.5
SEQ = "asyncio client, sequential"
DRIVERS: dict[str, tuple[Row, bool]] = {
    SEQ: (asyncio_sequential, False),
    f"asyncio client, {TASKS} tasks": (asyncio_tasks, True),
    "raw socket, 1 round trip at a time": (raw_floor, False),
    f"raw socket, batches of {CAPACITY_BATCH}": (raw_capacity, True),
}


def main() -> None:
    args = c.parser(__doc__.split("\n\n")[0]).parse_args()
    n_repeats = c.repeats(args, full=5, quick=1)
    n_seq = 300 if args.quick else 4_000
    n_pipe = 2_000 if args.quick else 16_000

    c.title("bench_server: the embedded server against a trivial websockets server")
    print(
        f"{c.describe_machine()}; {n_seq} calls per sequential row, {n_pipe} per pipelined "
        f"row; best of {n_repeats}, rows interleaved"
    )
    with c.servers(c.start_embedded, c.start_ws_const, c.start_canned) as running:
        for server in running:
            if server.note:
                print(f"note: {server.note}")
        timers = {
            (server.name, driver): (
                lambda r=row, p=pipelined, u=server.url: r(u, n_pipe if p else n_seq).wall
            )
            for driver, (row, pipelined) in DRIVERS.items()
            for server in running
        }
        per_op = c.best_of(timers, n_repeats)
    rate = {key: 1 / t for key, t in per_op.items()}
    names = [s.name for s in running]
    embedded, echo = names[0], names[1]
    rows = []
    for driver in DRIVERS:
        slowdown = rate[(echo, driver)] / rate[(embedded, driver)]
        rows.append(
            [
                driver,
                f"{slowdown:.2f}x",
                *(c.fmt_rate(rate[(name, driver)]) for name in names),
            ]
        )
    print()
    print("Slowdown of the embedded server = echo-baseline ops/s ÷ embedded ops/s (1.00x: as")
    print("fast; below 1: faster than the echo baseline), then ops/s for each server:")
    print(c.table(["driver", "slowdown", *(f"{n} ops/s" for n in names)], rows))
    print()
    verdict = c.Ratio(
        f"embedded slowdown, {SEQ}",
        rate[(echo, SEQ)] / rate[(embedded, SEQ)],
        TARGET,
        at_least=False,
    )
    print(
        f"Verdict (target: embedded within {TARGET}x of the echo baseline, one sequential client):"
    )
    print(c.ratio_table([verdict]))


if __name__ == "__main__":
    main()
