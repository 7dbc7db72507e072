"""Two installations of ndb side by side, e.g. the pure package against the compiled build.

Both builds cannot be imported in one process, so each mode of ``profile_request.py`` runs as a
process under each interpreter in turn (A, B, A, B, ...: a slow patch of the machine hits both),
on the installed package (``NDB_BENCH_INSTALLED=1``), and the best process CPU and wall time per
request of each are kept. The ratio A/B is what to read: above 1, B is faster.

    python bench/compare_builds.py /venv-pure/bin/python /venv-compiled/bin/python \\
        [--modes core asyncio ...] [--repeats 5] [-n 3000]

(docs/performance.md shows how to build the compiled wheel; install each wheel with the
``[bench]`` extra into a virtualenv of its own.)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import _common as c

UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3}
FIGURES = re.compile(r"process CPU ([\d.]+) (ns|µs|ms)/request, wall ([\d.]+) (ns|µs|ms)/request")
MODES = ["core", "sync", "asyncio", "asyncio-tasks", "trio-tasks", "sync-pipeline"]


def measure(python: str, mode: str, n: int) -> tuple[float, float]:
    """(CPU, wall) seconds per request of one run of ``mode`` under ``python``."""
    script = os.path.join(c.BENCH_DIR, "profile_request.py")
    env = {**os.environ, "NDB_BENCH_INSTALLED": "1"}
    done = subprocess.run(
        [python, script, mode, "-n", str(n)], capture_output=True, text=True, env=env
    )
    found = FIGURES.search(done.stdout)
    if done.returncode or found is None:
        sys.exit(f"{python} {script} {mode} failed:\n{done.stdout}{done.stderr}")
    cpu, cpu_unit, wall, wall_unit = found.groups()
    return float(cpu) * UNITS[cpu_unit], float(wall) * UNITS[wall_unit]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="the first interpreter (e.g. the pure package's virtualenv)")
    p.add_argument("b", help="the second interpreter (e.g. the compiled build's)")
    p.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("-n", type=int, default=3008, help="requests per run (a multiple of 64)")
    args = p.parse_args()
    print(c.describe_machine())
    rows = []
    for mode in args.modes:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeats):
            for side, python in (("a", args.a), ("b", args.b)):
                cpu, wall = measure(python, mode, args.n)
                old = best.get(side, (cpu, wall))
                best[side] = (min(old[0], cpu), min(old[1], wall))
        (cpu_a, wall_a), (cpu_b, wall_b) = best["a"], best["b"]
        rows.append(
            [
                mode,
                c.fmt_ns(cpu_a),
                c.fmt_ns(cpu_b),
                f"{cpu_a / cpu_b:.2f}x",
                c.fmt_ns(wall_a),
                c.fmt_ns(wall_b),
                f"{wall_a / wall_b:.2f}x",
            ]
        )
    print(f"best of {args.repeats} runs of {args.n} requests each, interleaved A B A B")
    print(c.table(["mode", "CPU a", "CPU b", "a/b", "wall a", "wall b", "a/b"], rows))


if __name__ == "__main__":
    main()
