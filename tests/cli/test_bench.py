"""``ndb bench``: every flavour runs the mix it is given and reports it per command."""

from __future__ import annotations

import json

import pytest

from ndb_cli.bench import Mix, Workload, percentile
from ndb_cli.surface import commands
from ndb_server.thread import ServerThread
from tests.cli.helpers import run_ndb

LEVELS = ("p50", "p90", "p99", "p99.9", "max")


@pytest.mark.parametrize("flavour", ["asyncio", "trio", "sync"])
def test_each_flavour_runs_the_mix_and_reports_per_command(
    ndb_server: ServerThread, flavour: str
) -> None:
    result = run_ndb(
        "bench", "--flavour", flavour, "-n", "300", "-c", "4", "--keys", "50",
        "--value-size", "20", "--commands", "kv_set:1,kv_get:2,sh_count", "--json",
        url=ndb_server.url,
    )  # fmt: skip
    assert (result.status, result.err) == (0, "")
    report = json.loads(result.out)
    assert report["settings"]["flavour"] == flavour
    assert report["total"]["requests"] == 300
    assert report["total"]["errors"] == 0
    per_command = report["commands"]
    assert list(per_command) == ["kv_set", "kv_get", "sh_count"]
    assert sum(c["requests"] for c in per_command.values()) == 300
    assert per_command["kv_get"]["requests"] > per_command["kv_set"]["requests"]
    for stats in [*per_command.values(), report["total"]]:
        levels = [stats[level] for level in LEVELS]
        assert levels == sorted(levels)
        assert levels[0] > 0
    stored = json.loads(run_ndb("kv_get", "bench:0", "bench:1", url=ndb_server.url).out)
    assert set(stored.values()) <= {"v" * 20}
    assert 0 < int(run_ndb("kv_count", url=ndb_server.url).out) <= 50


def test_duration_and_the_table(ndb_server: ServerThread) -> None:
    result = run_ndb("bench", "--duration", "0.3", "-c", "2", url=ndb_server.url)
    assert result.status == 0
    lines = result.out.splitlines()
    assert lines[1].split() == [
        "command", "requests", "errors", "req/s", "p50", "ms", "p90", "ms", "p99", "ms",
        "p99.9", "ms", "max", "ms",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[2:]] == ["kv_set", "kv_get", "all"]


def test_bad_options_exit_2(ndb_server: ServerThread) -> None:
    for args in (["--commands", "kv_find"], ["--commands", "kv_nope"], ["-c", "0"]):
        result = run_ndb("bench", *args, url=ndb_server.url)
        assert result.status == 2, args
        assert result.out == ""


def test_unreachable_server_exits_3() -> None:
    assert run_ndb("bench", "-n", "5", url="ws://127.0.0.1:1/").status == 3


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 90, 99, 99.9, 100)] == [50, 90, 99, 100, 100]
    assert percentile([7.0], 99.9) == 7.0


def test_mix_interleaves_by_weight_and_arguments_come_from_the_parameters() -> None:
    mix = Mix.parse("kv_set:1,kv_get:3")
    assert [s.name for s in mix.schedule()] == ["kv_set", "kv_get", "kv_get", "kv_get"]
    workload = Workload(keys=1, value_size=3)
    workload.token = 42
    table = commands()
    assert workload.arguments(table["kv_set"]) == {"keys": {"bench:0": "vvv"}}
    assert workload.arguments(table["kv_get"]) == {"keys": ["bench:0"]}
    assert workload.arguments(table["sh_get"]) == {"tkn": 42, "keys": ["bench:0"]}
    assert workload.arguments(table["sh_session_exists"]) == {"tkns": [42]}
