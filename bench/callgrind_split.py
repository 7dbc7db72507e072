"""Instructions per request of a `profile_request.py` mode, by library, under callgrind.

Instruction counts do not depend on how busy the machine is, so they compare two versions of
the code where wall-clock time cannot. The mode runs twice under
``valgrind --tool=callgrind`` (``-n N1`` and ``-n N2`` requests); the difference of the two
totals, divided by ``N2 - N1``, is one request's cost with start-up and warm-up cancelled out.
It is split by the shared object the instructions ran in: the Python interpreter (which runs
every Python layer: adapter, core, event loop; ``profile_request.py --cprofile`` splits those),
msgspec, the C parts of asyncio, the socket and select modules, libc, and the compiled core when
the installed package is the compiled build. Kernel time (the system calls themselves) is not
counted by callgrind.

    python bench/callgrind_split.py asyncio [--n1 500 --n2 1500]

Needs valgrind. Slow: about a minute per mode.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

import _common as c

LINE = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+(.*) \[(.*)\]\s*$")

GROUPS = [
    ("msgspec (C)", "msgspec"),
    ("asyncio C parts (_asyncio)", "_asyncio"),
    ("socket / select modules", "_socket"),
    ("socket / select modules", "select"),
    ("ssl / hashlib", "ssl"),
    ("ssl / hashlib", "crypto"),
    ("libc (incl. syscall wrappers)", "libc"),
    # The optional compiled core (docs/performance.md): its shared library, named by a hash.
    ("compiled core (mypyc)", "__mypyc"),
    ("Python interpreter (all Python code)", "libpython"),
    ("Python interpreter (all Python code)", "bin/python"),
]


def group_of(obj: str) -> str:
    base = os.path.basename(obj)
    for group, part in GROUPS:
        if part in base or part in obj:
            return group
    return "other: " + base


def run(mode: str, n: int, out: str, url: str | None) -> dict[str, int]:
    argv = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        os.path.join(c.BENCH_DIR, "profile_request.py"),
        mode,
        "-n",
        str(n),
    ]
    if url:
        argv += ["--url", url]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", out], check=True, capture_output=True, text=True
    ).stdout
    totals: dict[str, int] = {}
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        group = group_of(match[3])
        totals[group] = totals.get(group, 0) + int(match[1].replace(",", ""))
    return totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode")
    p.add_argument("--n1", type=int, default=500)
    p.add_argument("--n2", type=int, default=1500)
    p.add_argument("--url", help="a running server (default: a canned server per run)")
    p.add_argument("--keep", help="keep the two callgrind files with this prefix")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = args.keep or os.path.join(tmp, "cg")
        first = run(args.mode, args.n1, f"{prefix}.{args.n1}.out", args.url)
        second = run(args.mode, args.n2, f"{prefix}.{args.n2}.out", args.url)
    n = args.n2 - args.n1
    per = {g: (second.get(g, 0) - first.get(g, 0)) / n for g in set(first) | set(second)}
    total = sum(per.values())
    rows = [
        [group, f"{value:,.0f}", f"{100 * value / total:.1f}%"]
        for group, value in sorted(per.items(), key=lambda item: -item[1])
        if abs(value) >= total / 1000
    ]
    rows.append(["total", f"{total:,.0f}", "100%"])
    print(f"{args.mode}: instructions per request ({args.n1} vs {args.n2} requests)")
    print(c.table(["library", "instructions", "share"], rows))


if __name__ == "__main__":
    main()
