"""Driving ``ndb`` in a real pseudo-terminal, as a person types into it (pexpect)."""

from __future__ import annotations

import re
import sys
import time

import pexpect

from tests.cli.helpers import ndb_env

ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>])")


class Terminal:
    """One ``ndb`` process on a pty; `wait_for` reads its screen output without escapes."""

    def __init__(self, *args: str, **env: str) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "ndb_cli", *args],
            env={**ndb_env(**env), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"},
            encoding="utf-8",
            dimensions=(50, 160),
            timeout=20,
        )
        self.seen = ""  # everything printed so far, escapes removed
        self.mark = 0  # wait_for looks after this position

    def _read(self) -> None:
        try:
            chunk = self.child.read_nonblocking(65536, timeout=0.05)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            raise AssertionError(f"ndb exited; it printed:\n{self.seen[-2000:]}") from None
        self.seen += ANSI.sub("", chunk).replace("\r", "")

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears after what earlier waits matched."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.seen, self.mark)
            if match:
                self.mark = match.end()
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not shown; the screen had:\n{self.seen[-3000:]}")
            self._read()

    def prompt(self) -> None:
        self.wait_for(r"ndb [^\n]*:\d+>")

    def type(self, text: str) -> None:
        self.child.send(text)

    def line(self, text: str) -> None:
        self.child.send(text + "\r")

    def finish(self) -> int:
        """Ctrl-D at the next prompt; the exit status."""
        self.prompt()
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF, timeout=20)
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)
