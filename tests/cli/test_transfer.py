"""``ndb dump`` / ``ndb restore``: round trips between servers, batching, what is skipped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ndb_server.thread import ServerThread
from tests.cli.helpers import run_ndb
from tests.transports.proxy import Proxy

VALUES: dict[str, object] = {
    "user": {"name": "billy", "tags": ["a", "b"]},
    "1": 1,
    "a b": 'text with "quotes" and é',
    "nothing": None,
    "list": [1, 2.5, True, {"x": []}],
    **{f"k{i:04}": {"n": i, "pad": "p" * (i % 300)} for i in range(600)},
}


def lines_of(text: str) -> dict[str, object]:
    merged: dict[str, object] = {}
    for line in text.splitlines():
        entry = json.loads(line)
        assert len(entry) == 1  # one key per line
        merged.update(entry)
    return merged


def write_dump(path: Path, values: dict[str, object], extra: str = "") -> None:
    path.write_text("".join(json.dumps({k: v}) + "\n" for k, v in values.items()) + extra)


def test_round_trip_between_two_servers(
    ndb_server_factory: Callable[..., ServerThread], tmp_path: Path
) -> None:
    first, second = ndb_server_factory(), ndb_server_factory()
    source = tmp_path / "in.jsonl"
    write_dump(source, VALUES)
    restored = run_ndb("restore", str(source), url=first.url)
    assert (restored.status, restored.out) == (0, "")
    assert f"stored {len(VALUES)} keys" in restored.err
    dumped = tmp_path / "out.jsonl"
    result = run_ndb("dump", str(dumped), url=first.url)
    assert result.status == 0
    assert f"wrote {len(VALUES)} keys" in result.err
    assert lines_of(dumped.read_text()) == VALUES
    assert run_ndb("restore", str(dumped), url=second.url).status == 0
    again = run_ndb("dump", "-", url=second.url)  # '-' is standard output
    assert lines_of(again.out) == VALUES
    assert run_ndb("kv_count", url=second.url).out == f"{len(VALUES)}\n"


def test_restore_reports_what_it_skipped(ndb_server: ServerThread, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_dump(source, {"fine": 1, "huge": "x" * 5000, "also fine": 2}, extra="[1, 2]\nnot json\n")
    result = run_ndb("restore", str(source), url=ndb_server.url)
    assert result.status == 1
    assert "'huge'" in result.err
    assert "max_message_size 1024" in result.err
    assert "line 4: not a JSON object" in result.err
    assert "line 5: not a JSON object" in result.err
    assert "stored 2 keys" in result.err
    assert "skipped 3" in result.err
    assert json.loads(run_ndb("kv_get", "fine", "also fine", "huge", url=ndb_server.url).out) == {
        "fine": 1,
        "also fine": 2,
    }


def test_restore_from_stdin_into_a_server_with_a_larger_payload(
    ndb_server_factory: Callable[..., ServerThread],
) -> None:
    big = ndb_server_factory(max_payload=8192)
    text = json.dumps({"wide": "w" * 5000}) + "\n"
    refused = run_ndb("restore", "-", url=big.url, stdin=text)  # the client's default is 1024
    assert refused.status == 1
    assert "'wide'" in refused.err
    stored = run_ndb("--max-message-size", "8192", "restore", "-", url=big.url, stdin=text)
    assert stored.status == 0
    dumped = run_ndb("--max-message-size", "8192", "dump", "-", url=big.url)
    assert lines_of(dumped.out) == {"wide": "w" * 5000}


def test_batches_fit_max_message_size_and_carry_many_keys(
    ndb_server: ServerThread, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    write_dump(source, VALUES)
    with Proxy.for_url(ndb_server.url) as proxy:
        assert run_ndb("restore", str(source), url=proxy.url).status == 0
        sets = [t for t in proxy.texts("c2s") if t.startswith('{"KV_SET"')]
        assert run_ndb("dump", str(tmp_path / "out.jsonl"), url=proxy.url).status == 0
        gets = [t for t in proxy.texts("c2s") if t.startswith('{"KV_GET"')]
    for requests in (sets, gets):
        assert all(len(t.encode()) <= 1024 for t in requests)
        assert 1 < len(requests) < len(VALUES) / 2
    assert sum(len(json.loads(t)["KV_SET"]["keys"]) for t in sets) == len(VALUES)
    assert sorted(n for t in gets for n in json.loads(t)["KV_GET"]["keys"]) == sorted(VALUES)


def test_dump_of_an_unreachable_server_exits_3(tmp_path: Path) -> None:
    result = run_ndb("dump", str(tmp_path / "x.jsonl"), url="ws://127.0.0.1:1/")
    assert result.status == 3


def test_usage(ndb_server: ServerThread) -> None:
    assert run_ndb("dump", url=ndb_server.url).status == 2
    missing = run_ndb("restore", "/nonexistent/file", url=ndb_server.url)
    assert missing.status == 2
    assert "/nonexistent/file" in missing.err


@pytest.mark.parametrize(
    "args",
    [("dump", "--help"), ("dump", "-h"), ("restore", "-h"), ("help", "dump"), ("help", "restore")],
)
def test_help_for_dump_and_restore_shows_the_usage(
    ndb_server: ServerThread, tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run_ndb(*args, url=ndb_server.url, cwd=str(tmp_path))
    verb = args[0] if args[0] != "help" else args[1]
    assert (result.status, result.err) == (0, "")
    assert result.out.startswith(f"usage: ndb {verb} FILE")
    assert list(tmp_path.iterdir()) == []  # no file named --help or -h was written


def test_help_bench_is_bench_help() -> None:
    result = run_ndb("help", "bench")
    assert result.status == 0
    assert result.out == run_ndb("bench", "--help").out
    assert result.out.startswith("usage: ndb bench")
