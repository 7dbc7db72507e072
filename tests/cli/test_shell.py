"""The interactive shell, driven in a real pseudo-terminal as a person uses it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("prompt_toolkit")
pexpect = pytest.importorskip("pexpect")

from ndb_server.thread import ServerThread  # noqa: E402
from tests.cli.terminal import Terminal  # noqa: E402
from tests.transports.proxy import Proxy  # noqa: E402

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def history(tmp_path: Path) -> str:
    return str(tmp_path / "history")


def shell(url: str, history: str, *args: str) -> Terminal:
    terminal = Terminal("--url", url, *args, NDB_HISTORY=history)
    terminal.wait_for("connected to")
    terminal.prompt()
    return terminal


def test_completion_of_commands_options_and_key_names(
    ndb_server: ServerThread, history: str
) -> None:
    """Each completion is checked by what the completed command then does."""
    t = shell(ndb_server.url, history)
    t.line('kv_set {"username": 1, "other key": 2}')
    t.wait_for("OK")
    t.type("kv_fi\t")  # the only command starting so
    t.line(" '$' --rsp kv")
    t.wait_for(r'"other key": 2,\s+"username": 1')
    t.type("sh_create --dur\t")  # a parameter name
    t.line(" 77")
    t.wait_for(r"\n\d+\n")
    t.line("sh_info $tkn")
    t.wait_for(r'"duration": 77')
    t.type("kv_get use\t")  # key names come from the server
    t.wait_for("rname")  # a reply's completion: Enter before it shows would run what was typed
    t.line("")
    t.wait_for(r'\{\s+"username": 1\s+\}')
    t.type("kv_get oth\t")  # a name with a space is completed quoted
    t.wait_for("er key")
    t.line("")
    t.wait_for(r'\{\s+"other key": 2\s+\}')
    t.line('sh_set $tkn {"in session": 3}')
    t.wait_for("OK")
    t.type("sh_get $tkn in\t")  # a session's own key names
    t.wait_for("session")
    t.line("")
    t.wait_for(r'\{\s+"in session": 3\s+\}')
    assert t.finish() == 0


def test_multi_line_json_an_error_that_does_not_end_the_session_and_variables(
    ndb_server: ServerThread, history: str
) -> None:
    t = shell(ndb_server.url, history)
    t.line('kv_set {"user": {')
    t.line('   "name": "billy"')
    t.line("}}")
    t.wait_for(r"OK \(\d+\.\d+ ms\)")  # with its latency
    t.line("sh_get 12345 name")
    t.wait_for(r"SESSION_NOT_EXIST \(100\)")
    t.line("kv_get user")  # the session goes on
    t.wait_for(r'"name": "billy"')
    t.line("sh_create --durationSeconds 60")
    token = t.wait_for(r"(\d{3,})\n").group(1)
    t.line('sh_set $tkn {"cart": ["book"]}')
    t.wait_for("OK")
    t.line("sh_info $tkn")
    t.wait_for(rf'"tkn": {token}')
    t.line("kv_keys")
    t.wait_for(r'"user"')
    t.line("kv_get $_")
    t.wait_for(r'"name": "billy"')
    t.line("kv_update user '$.name' billy")
    t.wait_for("error: value: not valid JSON")
    t.line("kv_count")
    t.wait_for(r"\n1\n")
    assert t.finish() == 0


def test_history_is_kept_across_runs(ndb_server: ServerThread, history: str) -> None:
    t = shell(ndb_server.url, history)
    t.line('kv_set {"remembered": true}')
    t.wait_for("OK")
    assert t.finish() == 0
    assert "remembered" in Path(history).read_text()
    t = shell(ndb_server.url, history)
    t.type("\x1b[A")  # the up arrow brings back the last run's command
    t.wait_for(r'kv_set \{"remembered": true\}')
    t.line("")
    t.wait_for("OK")
    t.line("kv_get remembered")
    t.wait_for('"remembered": true')
    assert t.finish() == 0


def test_help_from_the_docstrings(ndb_server: ServerThread, history: str) -> None:
    t = shell(ndb_server.url, history)
    t.line("help")
    t.wait_for(r"kv_find\s+Find values matching the JSONPath")
    t.line("help kv_find")
    t.wait_for(r"usage: kv_find path \[--rsp \{keys,paths,kv\}\] \[keys\.\.\.\]")
    t.wait_for(r"limits the search to those")
    t.line("help kv_nope")
    t.wait_for("unknown command 'kv_nope'")
    t.line("kv_count")
    t.wait_for(r"\n0\n")
    assert t.finish() == 0


def test_lost_connection_is_shown_and_the_shell_reconnects(
    ndb_server: ServerThread, history: str
) -> None:
    with Proxy.for_url(ndb_server.url) as proxy:
        t = shell(proxy.url, history)
        proxy.mode = "refuse"
        proxy.kill()
        t.wait_for("lost; reconnecting")
        t.wait_for(r"\(reconnecting\)>")  # the prompt says so
        proxy.mode = "forward"
        t.wait_for("reconnected to")
        t.line("kv_count")
        t.wait_for(r"\n0\n")
        assert t.finish() == 0


def test_embedded_server_tour(history: str) -> None:
    """What the docs show: ndb --embedded, then kv_set, kv_get, sh_create, help kv_find."""
    t = Terminal("--embedded", NDB_HISTORY=history)
    t.wait_for(r"connected to ws://127\.0\.0\.1:\d+/")
    t.prompt()
    t.line('kv_set {"user": {"name": "billy"}}')
    t.wait_for("OK")
    t.line("kv_get user")
    t.wait_for(r'"name": "billy"')
    t.line("sh_create --durationSeconds 60")
    t.wait_for(r"\n\d+\n")
    t.line("help kv_find")
    t.wait_for("usage: kv_find")
    t.prompt()
    t.line("exit")
    t.child.expect(pexpect.EOF, timeout=20)
    t.child.close()
    assert t.child.exitstatus == 0


def test_ctrl_c_cancels_a_waiting_command_and_the_session_goes_on(
    ndb_server: ServerThread, history: str
) -> None:
    with Proxy.for_url(ndb_server.url) as proxy:
        t = shell(proxy.url, history)
        t.line('kv_set {"k": 1}')
        t.wait_for("OK")
        proxy.stall()  # replies are held back: the next command waits
        t.line("kv_get k")
        deadline = time.monotonic() + 20
        while not any("KV_GET" in text for text in proxy.texts("c2s")):
            assert time.monotonic() < deadline, "kv_get was not sent"
            time.sleep(0.02)
        t.child.sendintr()
        t.wait_for("cancelled")
        proxy.resume()  # the late reply to kv_get is dropped, not given to kv_count
        t.line("kv_count")
        t.wait_for(r"\n1\n")
        t.line("kv_get --key k")
        t.wait_for(r"\n1\n")
        assert t.finish() == 0
