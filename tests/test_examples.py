"""The README's quick start runs end to end on a fresh install, with no URL given (it starts an
embedded server for itself) and against a given server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ndb_server.thread import ServerThread

ROOT = Path(__file__).resolve().parents[1]


def run_example(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sessions.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_session_example_with_an_embedded_server() -> None:
    out = run_example()
    assert "embedded server at ws://127.0.0.1:" in out
    assert "created: {'fname': 'James', 'sname': 'smith'}" in out
    assert "overwritten: Smith" in out
    assert "user1: {'username': 'user1'}" in out
    assert "user2: {'blocked': True, 'username': 'user2'}" in out
    assert "sessions: {'totalKeys': 7, 'totalSessions': 4}" in out


def test_session_example_against_a_given_server(ndb_server: ServerThread) -> None:
    out = run_example(ndb_server.url)
    assert "embedded server" not in out
    assert "overwritten: Smith" in out
