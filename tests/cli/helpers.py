"""Running ``ndb`` as a user does: a separate process, arguments, stdin, exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Result:
    status: int
    out: str
    err: str


def ndb_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NDB_URL", "NO_COLOR")}
    env.update(extra)
    return env


def run_ndb(
    *args: str, url: str | None = None, stdin: str = "", cwd: str | None = None, **env: str
) -> Result:
    """``python -m ndb_cli ARGS`` with ``url`` in ``NDB_URL``; stdout and stderr are pipes."""
    extra = dict(env)
    if url is not None:
        extra["NDB_URL"] = url
    done = subprocess.run(
        [sys.executable, "-m", "ndb_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=ndb_env(**extra),
        timeout=60,
        cwd=cwd,
    )
    return Result(done.returncode, done.stdout, done.stderr)
