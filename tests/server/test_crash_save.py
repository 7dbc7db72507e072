"""A save interrupted by SIGKILL never leaves a dataset that loads half: afterwards the dataset
loads whole (the previous save or the interrupted one, complete) or not at all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ndb_transports.sync import NdbClient
from tests.server.wsclient import RawClient

ROOT = Path(__file__).resolve().parents[2]
KEYS = 60_000
PER_MESSAGE = 60


def start(persist: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ndb_server",
            "--port",
            "0",
            "--max-payload",
            "8192",
            "--persist",
            str(persist),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def fill(client: NdbClient, version: str) -> None:
    names = [f"key{i:05d}" for i in range(KEYS)]
    for first in range(0, KEYS, PER_MESSAGE):
        client.kv_set({name: f"{version}-{name}" for name in names[first : first + PER_MESSAGE]})


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5])
def test_kill_during_save_leaves_the_old_or_the_new_dataset_whole(
    tmp_path: Path, fraction: float
) -> None:
    """The kill lands at ``fraction`` of the time a full save took on this machine."""
    process, url = start(tmp_path)
    try:
        with NdbClient(max_message_size=8192, timeout=30) as client:
            assert client.open(url)
            fill(client, "v1")
            started = time.monotonic()
            client.kv_save("ds")
            save_time = time.monotonic() - started
            fill(client, "v2")
        raw = RawClient(url)
        raw.send_json({"KV_SAVE": {"name": "ds"}})
        time.sleep(save_time * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        raw.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()

    process, url = start(tmp_path)
    try:
        with NdbClient(max_message_size=8192, timeout=30) as client:
            assert client.open(url)
            assert client.kv_load("ds") == KEYS
            values = client.kv_get([f"key{i:05d}" for i in range(0, KEYS, 997)])
            versions = {value.split("-")[0] for value in values.values()}
            assert len(values) == len(range(0, KEYS, 997))
            assert versions in ({"v1"}, {"v2"}), versions
            keys = client.kv_keys()
            assert len(keys) == KEYS
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
