"""The library does not pay for its command line: importing it loads none of the CLI (its own
modules, the shell's prompt_toolkit, the embedded server that ``--embedded`` starts). Standard
library modules are not checked: the dependencies' own imports vary with their versions."""

from __future__ import annotations

import subprocess
import sys

from ndb_server.thread import ServerThread
from tests.cli.helpers import ndb_env

CHECK = """
import sys
import ndb_proto, ndb_proto.calls, ndb_transports
import ndb_transports.asyncio, ndb_transports.sync, ndb_transports.trio
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {
    "ndb_cli", "prompt_toolkit", "pygments", "ndb_server"})
print(",".join(loaded))
"""


def test_importing_the_library_imports_nothing_the_cli_needs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_the_one_shot_mode_does_not_import_the_shell_or_the_server(
    ndb_server: ServerThread,
) -> None:
    # A real command, run to the end: the check is printed after it, with its exit status.
    code = (
        "import sys, runpy\n"
        "sys.argv = ['ndb', 'kv_count']\n"
        "try:\n    runpy.run_module('ndb_cli', run_name='__main__')\n"
        "except SystemExit as exc:\n    status = exc.code\n"
        "print(int(status), sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'prompt_toolkit', 'ndb_server'}), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=ndb_env(NDB_URL=ndb_server.url),
    )
    assert done.stdout == "0\n"  # the command ran: the store is empty
    assert done.stderr.strip() == "0 []"
