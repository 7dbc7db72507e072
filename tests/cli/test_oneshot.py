"""One-shot commands in a subprocess against the embedded server: results, output styles and
exit statuses, as the issue specifies them."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from ndb_server.thread import ServerThread
from tests.cli.helpers import ndb_env, run_ndb
from tests.transports.proxy import Proxy


def test_set_get_count_and_a_key_named_like_a_number(ndb_server: ServerThread) -> None:
    url = ndb_server.url
    stored = run_ndb("kv_set", '{"user": {"name": "billy"}, "1": [true]}', url=url)
    assert (stored.status, stored.out, stored.err) == (0, "", "")
    got = run_ndb("kv_get", "user", url=url)
    assert got.status == 0
    assert json.loads(got.out) == {"user": {"name": "billy"}}
    assert got.out.count("\n") == 1  # piped: one compact line
    assert json.loads(run_ndb("kv_get", "1", url=url).out) == {"1": [True]}
    assert json.loads(run_ndb("kv_get", "--key", "1", url=url).out) == [True]
    assert run_ndb("kv_count", url=url).out == "2\n"


def test_url_option_wins_over_the_environment(ndb_server: ServerThread) -> None:
    result = run_ndb("--url", ndb_server.url, "kv_count", url="ws://127.0.0.1:1/")
    assert (result.status, result.out) == (0, "0\n")


def test_sh_create_prints_the_token_and_options_take_values(ndb_server: ServerThread) -> None:
    url = ndb_server.url
    created = run_ndb("sh_create", "--durationSeconds", "60", "--extendOnGet", url=url)
    assert created.status == 0
    token = int(created.out)
    info = json.loads(run_ndb("sh_info", str(token), url=url).out)
    assert info["tkn"] == token
    assert info["expiry"]["duration"] == 60
    assert info["expiry"]["extendOnGet"] is True
    assert info["expiry"]["extendOnSetAdd"] is False


def test_refused_command_exits_1_naming_the_status(ndb_server: ServerThread) -> None:
    result = run_ndb("sh_get", "12345", "fname", url=ndb_server.url)
    assert result.status == 1
    assert result.out == ""
    assert "SESSION_NOT_EXIST (100)" in result.err


def test_usage_errors_exit_2_name_the_parameter_and_send_nothing(
    ndb_server: ServerThread,
) -> None:
    with Proxy.for_url(ndb_server.url) as proxy:
        cases = [
            (("kv_update", "k", "$.a", "billy"), "value"),  # not JSON
            (("sh_get", "abc", "x"), "tkn"),  # not an integer
            (("kv_set", "[1]"), "keys"),  # not an object (the surface's own check)
            (("kv_update", "k"), "path"),  # missing
            (("kv_get", "--nope", "1"), "--nope"),
            (("kv_gte",), "kv_gte"),
            (("sh_create", "--extendOnGet"), "durationSeconds"),
            (("kv_set", json.dumps({"k": "x" * 2000})), "max_message_size"),
        ]
        for args, named in cases:
            result = run_ndb(*args, url=proxy.url)
            assert result.status == 2, args
            assert named in result.err, (args, result.err)
            assert result.out == ""
        assert proxy.texts("c2s") == []


def test_cannot_connect_exits_3() -> None:
    result = run_ndb("kv_count", url="ws://127.0.0.1:1/")
    assert result.status == 3
    assert "ws://127.0.0.1:1/" in result.err


def test_malformed_url_exits_2() -> None:
    result = run_ndb("--url", "http://x/", "kv_count")
    assert result.status == 2
    assert "--url" in result.err


def test_a_malformed_seconds_option_exits_2_saying_what_it_got() -> None:
    for option, value in (("--timeout", "abc"), ("--connect-timeout", "1e300")):
        result = run_ndb(option, value, "kv_count", url="ws://127.0.0.1:1/")
        assert result.status == 2
        assert option in result.err and value in result.err
        assert "_timeout" not in result.err and "_positive" not in result.err  # no internal names


def _stalled_after_first_reply(proxy: Proxy, *args: str) -> subprocess.Popen[str]:
    """``ndb ARGS`` reading commands from a pipe: the first is answered, then the proxy stops
    forwarding replies and the second is sent."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ndb_cli", *args],
        env=ndb_env(NDB_URL=proxy.url),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("kv_count\n")
    process.stdin.flush()
    assert process.stdout.readline() == "0\n"
    proxy.stall()
    process.stdin.write("kv_count\n")
    process.stdin.flush()
    deadline = time.monotonic() + 30
    while len(proxy.texts("c2s")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return process


def test_connection_lost_during_a_command_exits_3(ndb_server: ServerThread) -> None:
    with Proxy.for_url(ndb_server.url) as proxy:
        process = _stalled_after_first_reply(proxy)
        proxy.kill()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 3
    assert out == ""
    assert err.startswith("ndb: line 2: connection lost")


def test_timeout_option_exits_3_when_no_reply_comes(ndb_server: ServerThread) -> None:
    with Proxy.for_url(ndb_server.url) as proxy:
        process = _stalled_after_first_reply(proxy, "--timeout", "0.3")
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 3
    assert err.startswith("ndb: line 2: no reply in time")


def test_raw_prints_the_reply_under_its_name(ndb_server: ServerThread) -> None:
    url = ndb_server.url
    run_ndb("kv_set", '{"a": 1}', url=url)
    got = run_ndb("--raw", "kv_get", "a", url=url)
    assert json.loads(got.out) == {"KV_GET_RSP": {"st": 1, "keys": {"a": 1}}}
    stored = run_ndb("--raw", "kv_set", '{"b": 2}', url=url)
    assert json.loads(stored.out) == {"KV_SET_RSP": {"st": 1}}


def test_output_style_flags_override_the_detection(ndb_server: ServerThread) -> None:
    url = ndb_server.url
    run_ndb("kv_set", '{"a": {"b": [1, "x", null]}}', url=url)
    pretty = run_ndb("--pretty", "kv_get", "a", url=url).out
    assert pretty.count("\n") > 3
    assert "\x1b[" not in pretty
    assert json.loads(pretty) == {"a": {"b": [1, "x", None]}}
    coloured = run_ndb("--color", "kv_get", "a", url=url).out
    assert "\x1b[" in coloured
    assert coloured.count("\n") == 1


def test_help_comes_from_the_docstrings() -> None:
    from ndb_proto import calls

    listing = run_ndb("help")
    assert listing.status == 0
    for function in calls.SURFACE:
        assert function.__name__ in listing.out
    one = run_ndb("help", "kv_find")
    assert "usage: kv_find path [--rsp {keys,paths,kv}] [keys...]" in one.out
    assert (calls.kv_find.__doc__ or "").split("\n")[0] in one.out
    assert run_ndb("kv_find", "--help").out == one.out
