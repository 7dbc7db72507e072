"""Scripts when things go wrong around them: the reader of the output goes away, a reply cannot
be read, no reply comes, the connection drops while input is still open."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ndb_server.thread import ServerThread
from tests.cli.fake_server import DROP, FakeServer
from tests.cli.helpers import ndb_env

MANY = "kv_count\n" * 3000  # more lines than are read ahead of the printed results


@pytest.mark.parametrize(
    "script",
    # The variable line is valid whatever it receives ($_ is 0): whether the script reaches it
    # before the closed output is noticed depends on scheduling, and either way ends quietly.
    [
        MANY,
        "kv_count\n" * 5,
        "kv_count\n" * 50 + "sh_create --durationSeconds $_\n" + "kv_count\n" * 5,
    ],
    ids=["many-lines", "few-lines", "variable-line"],
)
def test_a_closed_output_ends_the_script_quietly(
    ndb_server: ServerThread, tmp_path: Path, script: str
) -> None:
    source = tmp_path / "script"
    source.write_text(script)
    errors = tmp_path / "errors"
    with source.open() as stdin, errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "ndb_cli"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=ndb_env(NDB_URL=ndb_server.url),
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"0\n"
            process.stdout.close()  # as `head -1` does
            status = process.wait(timeout=30)
        finally:
            process.kill()
            process.wait()
    assert (status, errors.read_text()) == (0, "")


def _start(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ndb_cli", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ndb_env(NDB_URL=url),
    )


def unreadable_second_reply(number: int, request: str, reply: str) -> str | None | object:
    del request
    return '{"KV_COUNT_RSP":{"st":1,"cnt":nope}}' if number == 2 else reply


def test_an_unreadable_reply_fails_its_line_and_the_script_goes_on() -> None:
    with FakeServer(unreadable_second_reply) as server:
        process = _start(server.url)
        status, out, err = _finish_with(process, "kv_count\nkv_count\nkv_count\nkv_count\n")
    assert status == 3
    assert out == "0\n0\n0\n"
    errors = err.splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("ndb: line 2: ")


def test_a_timeout_fails_its_line_and_the_script_goes_on() -> None:
    # Replies are held until three requests have come: the first line times out, then the
    # other two are sent, and their replies (after the first's late one) are printed.
    with FakeServer(hold_until=3) as server:
        process = _start(server.url, "--timeout", "0.5")
        watchdog = threading.Timer(30, process.kill)
        watchdog.start()
        try:
            assert process.stdin is not None and process.stderr is not None
            process.stdin.write("kv_count\n")
            process.stdin.flush()
            first_error = process.stderr.readline()
            status, out, err = _finish_with(process, "kv_count\nkv_count\n")
        finally:
            watchdog.cancel()
    assert first_error.startswith("ndb: line 1: no reply in time")
    assert (status, out, err) == (3, "0\n0\n", "")


def test_a_lost_connection_names_the_lines_that_did_not_run() -> None:
    # The server drops the connection when the third request arrives, without replying to any.
    def drop_at_third(number: int, request: str, reply: str) -> str | None | object:
        return DROP if number == 3 else reply

    script = "kv_count\nkv_count\nkv_count\nkv_get $_\nkv_count\n"
    with FakeServer(drop_at_third, hold_until=3) as server:
        status, out, err = _finish_with(_start(server.url), script)
    assert (status, out) == (3, "")
    errors = err.splitlines()
    assert errors[0].startswith("ndb: line 1: connection lost")
    assert errors[1].startswith("ndb: the script stopped at line 1")
    assert "lines 2-3: outcome unknown" in errors[1]
    assert "line 4: not run" in errors[1]
    assert len(errors) == 2


def test_a_lost_connection_ends_the_script_while_input_is_still_open() -> None:
    with FakeServer(lambda number, request, reply: DROP) as server:
        process = _start(server.url)
        try:
            assert process.stdin is not None
            process.stdin.write("kv_get a\n")
            process.stdin.flush()  # and the input stays open
            status = process.wait(timeout=30)
        finally:
            process.kill()
            process.communicate()
    assert status == 3


def test_a_connection_lost_between_lines_ends_the_script_while_input_is_still_open() -> None:
    with FakeServer() as server:
        process = _start(server.url)
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write("kv_count\n")
            process.stdin.flush()  # and the input stays open
            assert process.stdout.readline() == "0\n"
            server.drop_all()
            status = process.wait(timeout=30)
        finally:
            process.kill()
            _, err = process.communicate()
    assert status == 3
    assert err.startswith("ndb: the script stopped after line 1, the connection is lost")


def _finish_with(process: subprocess.Popen[str], script: str) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(script, timeout=30)
    finally:
        process.kill()
    return process.returncode, out, err
