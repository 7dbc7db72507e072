"""``python -m ndb_server``: it starts, prints its URL, serves, stops cleanly on SIGTERM and
SIGINT, and rejects bad flags with a usage message and exit status 2."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ndb_proto import NdbTimeoutError
from ndb_transports.sync import NdbClient

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ndb_server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_prints_its_url_serves_and_stops_cleanly(signum: int) -> None:
    with running() as (process, url):
        assert url.startswith("ws://127.0.0.1:")
        with NdbClient() as client:
            assert client.open(url)
            client.kv_set({"a": 1})
            assert client.kv_get(key="a") == 1
            process.send_signal(signum)
            assert process.wait(timeout=10) == 0
            # The server said goodbye (close 1000); with nothing to reconnect to, a new request
            # waits for a reconnect that never comes and times out, certainly not sent.
            with pytest.raises(NdbTimeoutError) as info:
                client.kv_count(timeout=0.5)
            assert info.value.outcome_unknown is False


def test_max_payload_and_persist_flags_apply(tmp_path: Path) -> None:
    with running("--max-payload", "8192", "--persist", str(tmp_path)) as (_, url):
        with NdbClient(max_message_size=8192) as client:
            assert client.open(url)
            client.kv_set({"big": "x" * 7000})
            assert client.sv_info()["persistEnabled"] is True
            client.kv_save("ds")
        assert (tmp_path / "ds").is_dir()


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "notanumber"],
        ["--port", "70000"],
        ["--max-payload", "63"],
        ["--max-payload", "8193"],
        ["--persist", "/nonexistent/dir"],
        ["--idle-ping", "-1"],
        ["--no-such-flag"],
    ],
)
def test_bad_flags_exit_2_with_usage(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ndb_server", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 2
    assert "usage: python -m ndb_server" in result.stderr


def test_port_in_use_is_reported_not_a_traceback() -> None:
    with running() as (_, url):
        port = url.rsplit(":", 1)[1].strip("/")
        result = subprocess.run(
            [sys.executable, "-m", "ndb_server", "--port", port],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "ndb_server:" in result.stderr
