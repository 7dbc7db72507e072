"""Where the blocking client's CPU goes, per request: a per-layer split of one ``kv_set``.

Two views of the same loop (sequential, or 8 threads sharing one client), each against the
canned server (or the embedded one) running in its own process:

* ``--callgrind``: instructions per request, which do not depend on the machine's load. The
  loop runs under ``valgrind --tool=callgrind`` twice, for N and 2N requests; the difference
  divided by N is the cost of one request, start-up and set-up cancelled out. Instructions are
  grouped by the object that ran them: the interpreter (every Python layer), msgspec, libc (the
  system call wrappers, malloc, the locks' futexes) and the rest. Time spent in the kernel is not
  an instruction here: count system calls with ``strace -c -f``.
* ``--cprofile`` (the default): the Python layers' share, from cProfile run in every thread:
  our sync adapter (``ndb_transports``), the core (``ndb_proto``: client, channel, codec,
  frames, pipeline, building the request), msgspec, the socket calls, and the threading
  primitives (locks, wake-up queues). A builtin that is none of these (``len``,
  ``isinstance``...) counts for the layer that called it. cProfile's own cost per call inflates
  layers that make many small calls, so read its split as shares, and the callgrind total as the
  cost.

    python bench/profile_sync.py [seq|shared|each|core|raw] [--n N] [--server canned|embedded]
        [--callgrind | --cprofile]

The rows ``core`` (the core on a bare blocking socket, no adapter) and ``raw`` (a raw socket
round trip) are the same as in ``bench_clients.py``; their difference from ``seq`` is the
adapter's cost.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import _common as c
import bench_clients as b

THREADS = b.THREADS

LAYERS = ("adapter", "core", "msgspec", "socket", "threading", "other")


def _seq(url: str, n: int) -> None:
    b.sync_sequential(url, n)


def _shared(url: str, n: int) -> None:
    b.sync_shared(url, n)


def _each(url: str, n: int) -> None:
    b.sync_one_each(url, n)


def _core(url: str, n: int) -> None:
    b.core_on_raw_socket(url, n)


def _raw(url: str, n: int) -> None:
    b.raw_floor(url, n)


ROWS: dict[str, Callable[[str, int], None]] = {
    "seq": _seq,
    "shared": _shared,
    "each": _each,
    "core": _core,
    "raw": _raw,
}


# -- cProfile, in every thread -----------------------------------------------------------------


def _layer_of_file(filename: str) -> str | None:
    path = filename.replace(os.sep, "/")
    if "/ndb_transports/" in path:
        return "adapter"
    if "/ndb_proto/" in path or "/wsproto/" in path:
        return "core"
    if "/threading.py" in path or "/queue.py" in path:
        return "threading"
    if "/socket.py" in path or "/selectors.py" in path or "/ssl.py" in path:
        return "socket"
    if "/bench/" in path:
        return "bench"
    return None


_BUILTIN_LAYERS = [
    (re.compile(r"msgspec"), "msgspec"),
    (re.compile(r"_socket\.socket|select\.|poll'|_ssl\.|'recv|'send|socketpair"), "socket"),
    (
        re.compile(r"_thread\.|SimpleQueue|_queue\.|RLock|lock' objects|Condition|allocate_lock"),
        "threading",
    ),
]


def _builtin_layer(name: str) -> str | None:
    for pattern, layer in _BUILTIN_LAYERS:
        if pattern.search(name):
            return layer
    return None


def split_profile(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per layer; a plain builtin is charged to its callers' layers."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        layer = _layer_of_file(filename)
        if layer is None and filename == "~":
            layer = _builtin_layer(name)
        if layer is not None:
            out[layer] += tottime
            continue
        if filename != "~" or not callers:
            out["other"] += tottime
            continue
        # A plain builtin: share its time among its callers' layers by call count.
        total_calls = sum(v[0] for v in callers.values()) or 1
        for (caller_file, _l, _n), v in callers.items():
            out[_layer_of_file(caller_file) or "other"] += tottime * v[0] / total_calls
    return dict(out)


def _new_profile() -> cProfile.Profile:
    # CPU time of the calling thread: time blocked (in poll, or asleep) is not a cost.
    return cProfile.Profile(time.thread_time_ns, 1e-9)


def run_profiled(row: str, url: str, n: int) -> pstats.Stats:
    """Run the row with a cProfile in every thread (threading.setprofile starts one in each new
    thread), and merge them."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(frame: Any, event: str, arg: Any) -> None:
        profile = _new_profile()
        with lock:
            profiles.append(profile)
        sys.setprofile(None)
        profile.enable()

    main = _new_profile()
    threading.setprofile(start_in_thread)
    main.enable()
    try:
        ROWS[row](url, n)
    finally:
        main.disable()
        threading.setprofile(None)
    stats = pstats.Stats(main)
    for profile in profiles:
        profile.disable()
        profile.create_stats()
        if profile.stats:
            stats.add(profile)
    return stats


def print_layers(heading: str, unit: str, per_request: dict[str, float], digits: int) -> None:
    """A heading, then each layer's cost per request and share, costliest first."""
    per_request.pop("bench", None)
    total = sum(per_request.values())
    print(f"{heading}: {total:,.{digits}f} {unit} per request")
    ranked = sorted(per_request.items(), key=lambda item: -item[1])
    print(
        c.table(
            ["layer", f"{unit} per request", "share"],
            [[layer, f"{v:,.{digits}f}", f"{v / total:.0%}"] for layer, v in ranked],
        )
    )


def cprofile_report(row: str, url: str, n: int, top: int) -> None:
    layers = split_profile(stats := run_profiled(row, url, n))
    per = {layer: layers.get(layer, 0.0) / n * 1e6 for layer in LAYERS}
    print_layers(f"cProfile (own CPU time), {row}, {n} requests", "µs", per, 1)
    if top:
        print()
        stats.sort_stats("tottime").print_stats(top)


# -- bytecodes, per layer ------------------------------------------------------------------------


def run_counting_opcodes(row: str, url: str, n: int) -> dict[str, int]:
    """Run the row with every thread tracing its bytecodes; the count per layer (by file).
    Deterministic, so a change that removes work shows even on a busy machine; a bytecode is
    not a fixed cost, so callgrind's instructions remain the measure of CPU."""
    counts: dict[str, int] = defaultdict(int)
    layer_of: dict[str, str] = {}

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            filename = frame.f_code.co_filename
            layer = layer_of.get(filename)
            if layer is None:
                layer = layer_of[filename] = _layer_of_file(filename) or "other"
            counts[layer] += 1
        return tracer

    threading.settrace(tracer)
    sys.settrace(tracer)
    try:
        ROWS[row](url, n)
    finally:
        sys.settrace(None)
        threading.settrace(None)
    return counts


def opcodes_report(row: str, url: str, n: int) -> None:
    small = run_counting_opcodes(row, url, n)
    large = run_counting_opcodes(row, url, 2 * n)
    per = {layer: (large.get(layer, 0) - small.get(layer, 0)) / n for layer in large}
    print_layers(f"bytecodes, {row} ({n} and {2 * n} requests)", "bytecodes", per, 0)


# -- callgrind ------------------------------------------------------------------------------------


def _object_of(path: str) -> str:
    name = os.path.basename(path)
    if "/msgspec/" in path:
        return "msgspec"
    if name.startswith(("python3", "libpython")):
        return "interpreter"
    if name.startswith(("libc.", "libc-", "libpthread", "libm.")):
        return "libc"
    if name.startswith("ld-linux"):
        return "loader"
    return name.split(".cpython")[0].split(".so")[0]


def callgrind_run(row: str, url: str, n: int, workdir: str) -> tuple[int, dict[str, int]]:
    """Instructions of one run of the row for ``n`` requests: the total, and per object."""
    out = os.path.join(workdir, f"cg.{row}.{n}")
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            os.path.abspath(__file__),
            row,
            "--n",
            str(n),
            "--url",
            url,
            "--plain",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", out],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = 0
    per_object: dict[str, int] = defaultdict(int)
    current = "?"  # callgrind_annotate names a line's object only when it changes
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if match is None:
            continue
        count = int(match[1].replace(",", ""))
        rest = match[2]
        if "PROGRAM TOTALS" in rest:
            total = count
            continue
        named = re.search(r"\[([^\]]+)\]\s*$", rest)
        if named is not None:
            current = _object_of(named[1])
        per_object[current] += count
    return total, dict(per_object)


def callgrind_report(row: str, url: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        t1, o1 = callgrind_run(row, url, n, workdir)
        t2, o2 = callgrind_run(row, url, 2 * n, workdir)
    per = (t2 - t1) / n
    print(f"callgrind, {row}: {per:,.0f} instructions per request ({n} and {2 * n} requests)")
    objects = sorted(set(o1) | set(o2), key=lambda k: -(o2.get(k, 0) - o1.get(k, 0)))
    rows = []
    for obj in objects:
        d = (o2.get(obj, 0) - o1.get(obj, 0)) / n
        if abs(d) >= 0.005 * per:
            rows.append([obj, f"{d:,.0f}", f"{d / per:.0%}"])
    print(c.table(["object", "instructions per request", "share"], rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("row", nargs="?", default="seq", choices=sorted(ROWS))
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--server", choices=["canned", "embedded"], default="canned")
    p.add_argument("--url", help="an already running server (the servers are not started)")
    p.add_argument("--callgrind", action="store_true", help="instructions per request")
    p.add_argument("--opcodes", action="store_true", help="Python bytecodes per request, by layer")
    p.add_argument("--top", type=int, default=0, help="with cProfile: also the N costliest")
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.url:
        url = args.url
        if args.plain:
            ROWS[args.row](url, args.n)
        elif args.callgrind:
            callgrind_report(args.row, url, args.n)
        elif args.opcodes:
            opcodes_report(args.row, url, args.n)
        else:
            cprofile_report(args.row, url, args.n, args.top)
        return
    start = c.start_canned if args.server == "canned" else c.start_embedded
    with c.servers(start) as (server,):
        if args.callgrind:
            callgrind_report(args.row, server.url, args.n)
        elif args.opcodes:
            opcodes_report(args.row, server.url, args.n)
        else:
            cprofile_report(args.row, server.url, args.n, args.top)


if __name__ == "__main__":
    main()
