"""Run every benchmark, one after the other, each in its own process.

    python bench/run_all.py [--quick] [--repeats N] [--only NAME ...]

``--quick`` and ``--repeats`` are passed to each script. The exit status is non-zero if a script
failed (crashed), never because of a measured number: verdicts are informative.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = [
    "bench_codec",
    "bench_core",
    "bench_window",
    "bench_clients",
    "bench_server",
    "bench_testkit",
]


def main() -> int:
    p = argparse.ArgumentParser(description="Run every benchmark.")
    p.add_argument("--quick", action="store_true", help="small N, few repeats (a smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="best-of-N repeats per row")
    p.add_argument("--only", nargs="*", choices=SCRIPTS, help="run only these scripts")
    args = p.parse_args()
    extra = (["--quick"] if args.quick else []) + (
        ["--repeats", str(args.repeats)] if args.repeats is not None else []
    )
    failed = []
    for name in args.only or SCRIPTS:
        start = time.perf_counter()
        code = subprocess.call([sys.executable, os.path.join(BENCH_DIR, name + ".py"), *extra])
        took = time.perf_counter() - start
        print(f"\n[{name}: {'ok' if code == 0 else f'FAILED (exit {code})'}, {took:.0f} s]")
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
