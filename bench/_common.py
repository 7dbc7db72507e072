"""Shared helpers for the benchmarks: timing, tables, verdicts and server subprocesses.

Nothing here asserts performance. Every number is measured in the run that prints it, next to a
baseline measured in the same run, and the ratio is what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)

# The benchmarks run from a checkout whether or not the package is installed. With
# NDB_BENCH_INSTALLED=1 they run on the installed package instead (the compiled build, say,
# against the pure one: docs/performance.md), and the checkout's source stays out of the way.
CHECKOUT_FIRST = os.environ.get("NDB_BENCH_INSTALLED") != "1"
if CHECKOUT_FIRST and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

KV_SET_RSP = '{"KV_SET_RSP":{"st":1}}'
"""What NemesisDB answers to a successful KV_SET (and what the canned servers always answer)."""

USER = {
    "name": "billy",
    "email": "billy@example.com",
    "age": 42,
    "tags": ["admin", "beta"],
    "active": True,
}
"""A small stored object, the typical value of the benchmarks' KV_SET."""

BENCH_KEY = "ndb-bench:user:1"
"""The key every client benchmark writes (one key, overwritten: the store does not grow)."""


# -- command line ------------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small N and few repeats (a smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="best-of-N repeats per row")
    return p


def repeats(args: argparse.Namespace, full: int = 5, quick: int = 2) -> int:
    if args.repeats is not None:
        return max(1, args.repeats)
    return quick if args.quick else full


# -- timing ------------------------------------------------------------------------------------


K = TypeVar("K")


def best_of(rows: Mapping[K, Callable[[], float]], n_repeats: int) -> dict[K, float]:
    """Run every row ``n_repeats`` times, round-robin (so slow drifts of the machine hit every
    row alike), and keep each row's smallest time. A row returns the seconds it measured."""
    best = {name: float("inf") for name in rows}
    for _ in range(n_repeats):
        for name, run in rows.items():
            best[name] = min(best[name], run())
    return best


def loop_timer(fn: Callable[[], object], n: int) -> Callable[[], float]:
    """A row timing ``n`` calls of ``fn``."""

    def run() -> float:
        rng = range(n)
        start = time.perf_counter()
        for _ in rng:
            fn()
        return time.perf_counter() - start

    return run


# -- output ------------------------------------------------------------------------------------


def fmt_rate(ops_per_s: float) -> str:
    if ops_per_s >= 1e6:
        return f"{ops_per_s / 1e6:.2f} M/s"
    if ops_per_s >= 1e3:
        return f"{ops_per_s / 1e3:.1f} k/s"
    return f"{ops_per_s:.0f} /s"


def fmt_ns(seconds: float) -> str:
    ns = seconds * 1e9
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        out = []
        for i, cell in enumerate(row):
            # First column left-aligned (names), the rest right-aligned (numbers).
            out.append(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def title(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


@dataclass
class Ratio:
    """One target: ``value`` compared with ``target`` (``at_least`` or at most)."""

    name: str
    value: float
    target: float
    at_least: bool = True

    @property
    def verdict(self) -> str:
        if self.value != self.value:  # NaN: not measured
            return "n/a"
        ok = self.value >= self.target if self.at_least else self.value <= self.target
        return "PASS" if ok else "MISS"

    def row(self) -> list[str]:
        sign = "≥" if self.at_least else "≤"
        value = "n/a" if self.value != self.value else f"{self.value:.2f}x"
        return [self.name, value, f"{sign} {self.target:g}x", self.verdict]


def ratio_table(ratios: Sequence[Ratio]) -> str:
    return table(["ratio", "measured", "target", "verdict"], [r.row() for r in ratios])


# -- server subprocesses -----------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    if CHECKOUT_FIRST:
        env["PYTHONPATH"] = REPO_ROOT if not path else REPO_ROOT + os.pathsep + path
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ServerProcess:
    name: str
    url: str
    process: subprocess.Popen[str] | None  # None: an external server (NDB_URL)
    note: str = ""

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_server(name: str, argv: Sequence[str], note: str = "") -> ServerProcess:
    """Start a server process that prints its ``ws://`` URL on its first line of output."""
    proc = subprocess.Popen(
        [sys.executable, *argv],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("ws://"):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{name} server did not print its URL (got {line!r})")
    # Nothing more is read from stdout; the servers print nothing else.
    return ServerProcess(name, line, proc, note)


def start_embedded() -> ServerProcess:
    """``python -m ndb_server --port 0`` in its own process (own GIL, own core if free)."""
    return start_server("embedded", ["-m", "ndb_server", "--port", "0"])


def start_canned(reply: str = KV_SET_RSP) -> ServerProcess:
    return start_server("canned", [os.path.join(BENCH_DIR, "canned_server.py"), "--reply", reply])


def start_ws_const(reply: str = KV_SET_RSP) -> ServerProcess:
    return start_server(
        "echo-baseline",
        [os.path.join(BENCH_DIR, "ws_const_server.py"), "--reply", reply],
    )


def server_main(description: str, serve: Callable[[str, int, str], Awaitable[None]]) -> None:
    """The command line of the stand-in servers (``--host``, ``--port``, ``--reply``): run
    ``serve(host, port, reply)``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--reply", default=KV_SET_RSP, help="the JSON text of every reply")
    args = p.parse_args()
    asyncio.run(serve(args.host, args.port, args.reply))


async def announce_until_signalled(address: Sequence[object]) -> None:
    """In a stand-in server: print the ``ws://`` URL of the bound ``address`` on the first line
    (what `start_server` reads), then wait for SIGTERM or Ctrl-C."""
    host, port = address[:2]
    print(f"ws://{host}:{port}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def external_server() -> ServerProcess | None:
    url = os.environ.get("NDB_URL")
    return ServerProcess("NDB_URL", url, None) if url else None


@contextlib.contextmanager
def servers(*starters: Callable[[], ServerProcess | None]) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for start in starters:
            server = start()
            if server is not None:
                started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()


def describe_machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 0
    text = f"Python {sys.version.split()[0]}, {cpus} CPUs available"
    with contextlib.suppress(OSError, AttributeError):
        load = os.getloadavg()[0]
        text += f", load average {load:.2f}"
        if load > 0.5 * cpus:
            text += " (BUSY MACHINE: expect noise; ratios hold up better than absolute numbers)"
    return text


def calibrate(fn: Callable[[], object], target_seconds: float) -> int:
    """How many calls of ``fn`` take about ``target_seconds`` (at least 1)."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= target_seconds / 4 or n >= 1 << 24:
            return max(1, int(n * target_seconds / max(elapsed, 1e-9)))
        n *= 4
