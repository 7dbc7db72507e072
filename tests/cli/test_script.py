"""Commands one per line on standard input: pipelined, printed in order, errors by line."""

from __future__ import annotations

import json

from ndb_cli.lines import split_lines
from ndb_server.thread import ServerThread
from tests.cli.fake_server import FakeServer
from tests.cli.helpers import run_ndb

SCRIPT = """\
# comments and blank lines are skipped
kv_set {"a": 1}
kv_get a

kv_set {"a":
  [2, 3]}
kv_get --key a
kv_count
sh_create
sh_set $tkn {"x": "y"}
sh_get $tkn x
kv_keys
kv_get $_
"""


def test_results_in_line_order_with_variables(ndb_server: ServerThread) -> None:
    result = run_ndb(url=ndb_server.url, stdin=SCRIPT)
    assert (result.status, result.err) == (0, "")
    lines = result.out.splitlines()
    assert json.loads(lines[0]) == {"a": 1}
    assert json.loads(lines[1]) == [2, 3]
    assert lines[2] == "1"
    token = int(lines[3])
    assert json.loads(lines[4]) == {"x": "y"}
    assert json.loads(lines[5]) == ["a"]
    assert json.loads(lines[6]) == {"a": [2, 3]}
    assert len(lines) == 7
    assert token > 0


def test_commands_are_pipelined_over_one_connection() -> None:
    # The server answers nothing until 8 requests have arrived (and drops the connection if
    # they do not come): a client that waited for each reply before sending the next would
    # fail here, whatever the scheduling. (The client's reply budget, not the script, bounds
    # how many are in flight; 8 is well inside it. KV_CONTAINS, not KV_GET: nothing is written
    # behind a GET's reply, whose size has no bound.)
    script = "".join(f'kv_set {{"k{i}": {i}}}\nkv_contains k{i}\n' for i in range(25))
    with FakeServer(hold_until=8) as server:
        result = run_ndb(url=server.url, stdin=script)
        connections = server.connections
    assert (result.status, result.err) == (0, "")
    assert result.out.splitlines() == [f'["k{i}"]' for i in range(25)]
    assert connections == 1


def test_bad_lines_are_reported_by_number_and_the_script_goes_on(
    ndb_server: ServerThread,
) -> None:
    script = 'kv_set {"a": 1}\nkv_nope\nsh_get 1 x\nkv_get a\nkv_get {\n'
    result = run_ndb(url=ndb_server.url, stdin=script)
    assert result.status == 2  # the most serious: a usage error beats a refusal
    assert result.out.splitlines() == ['{"a":1}']
    errors = result.err.splitlines()
    assert errors[0].startswith("ndb: line 2: unknown command 'kv_nope'")
    assert errors[1].startswith("ndb: line 3: SH_GET failed: SESSION_NOT_EXIST (100)")
    assert errors[2].startswith("ndb: line 5: ")
    assert len(errors) == 3


def test_refusal_alone_exits_1(ndb_server: ServerThread) -> None:
    result = run_ndb(url=ndb_server.url, stdin="kv_count\nsh_end 5\nkv_count\n")
    assert result.status == 1
    assert result.out == "0\n0\n"
    assert "SESSION_NOT_EXIST (100)" in result.err


def test_variable_before_any_result_is_a_usage_error(ndb_server: ServerThread) -> None:
    result = run_ndb(url=ndb_server.url, stdin="sh_get $tkn x\n")
    assert result.status == 2
    assert "$tkn" in result.err


def test_embedded_server_for_a_script() -> None:
    result = run_ndb("--embedded", stdin='kv_set {"a": [1]}\nkv_get a\nkv_count\n')
    assert (result.status, result.err) == (0, "")
    assert result.out.splitlines() == ['{"a":[1]}', "1"]


def test_line_numbers_count_newlines_only(ndb_server: ServerThread) -> None:
    # A form feed, a Unicode line separator and \r\n line ends are not extra lines.
    script = "kv_count\r\n\x0ckv_count\u2028\r\nkv_nope\r\nkv_count\n"
    result = run_ndb(url=ndb_server.url, stdin=script)
    assert result.status == 2
    assert result.out == "0\n0\n0\n"
    assert result.err.startswith("ndb: line 3: unknown command 'kv_nope'")


def test_a_carriage_return_line_feed_split_between_reads_is_one_line_end() -> None:
    first, rest = split_lines("kv_count\r")
    assert (first, rest) == ([], "kv_count\r")
    assert split_lines(rest + "\nkv_count\n") == (["kv_count\n", "kv_count\n"], "")


def test_an_apostrophe_inside_a_word_does_not_open_a_quote(ndb_server: ServerThread) -> None:
    script = "kv_set {\"it's\": 1}\nkv_get it's\nkv_get a\"b\nkv_count\nkv_get 'it''s'\n"
    result = run_ndb(url=ndb_server.url, stdin=script)
    assert (result.status, result.err) == (0, "")
    assert result.out.splitlines() == ['{"it\'s":1}', "{}", "1", "{}"]
