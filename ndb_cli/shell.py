"""The interactive shell (``ndb`` on a terminal, ``ndb --embedded``), built on prompt_toolkit.

Each line is a command as in a script; a JSON value left open continues on the next line.
Results are printed as coloured JSON with the command's latency; a refused command prints its
status and the session goes on. ``$tkn`` is the last session created and ``$_`` the last
result. History is kept in ``$NDB_HISTORY`` (default ``~/.ndb_history``). The prompt shows
whether the connection is up, and a watcher prints when it drops and when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.formatted_text import ANSI, FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from ndb_cli.completion import KeyNames, ShellCompleter
from ndb_cli.help import command_help, overview
from ndb_cli.output import Printer
from ndb_cli.runner import Exit, classify, execute, find_command, prepare
from ndb_cli.variables import Variables
from ndb_cli.words import is_complete, split_words
from ndb_proto import __version__
from ndb_proto.uri import parse_uri
from ndb_transports.asyncio import NdbClient

T = TypeVar("T")

SHELL_COMMANDS = {
    "help": "help [COMMAND]: the commands, or one command's parameters",
    "exit": "exit (or quit, or Ctrl-D): leave the shell",
}
WATCH_INTERVAL = 0.2
"""Seconds between checks of the connection state (the client has no change callback)."""

RED, DIM, GREEN, YELLOW, RESET = "\x1b[31m", "\x1b[2m", "\x1b[32m", "\x1b[33m", "\x1b[0m"


def history_path() -> Path:
    return Path(os.environ.get("NDB_HISTORY") or Path.home() / ".ndb_history")


def _enter_accepts_complete_input() -> KeyBindings:
    """Enter runs the input once its JSON is closed; until then it starts a new line."""
    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    return bindings


class Shell:
    """One interactive session on an open client."""

    def __init__(self, client: NdbClient, url: str, *, raw: bool = False) -> None:
        self.client = client
        self.url = url
        self.raw = raw
        endpoint = parse_uri(url)
        self.place = f"{endpoint.host}:{endpoint.port}"
        self.variables = Variables()
        self.names = KeyNames(client, self.variables)
        self.printer = Printer(_Terminal(), pretty=True, colour=not os.environ.get("NO_COLOR"))
        self.connected = client.is_connected()

    def _prompt(self) -> FormattedText:
        if self.client.is_connected():
            return FormattedText([("ansigreen", "ndb "), ("bold", self.place), ("", "> ")])
        return FormattedText(
            [("ansired", "ndb "), ("bold", self.place), ("ansired", " (reconnecting)"), ("", "> ")]
        )

    def _say(self, colour: str, text: str) -> None:
        # Above the prompt when one is being edited, else simply printed.
        print_formatted_text(ANSI(f"{colour}{text}{RESET}"))

    async def _watch(self) -> None:
        """Print when the connection drops and when it is back."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            now = self.client.is_connected()
            if now != self.connected:
                self.connected = now
                if now:
                    self._say(GREEN, f"* reconnected to {self.url}")
                else:
                    self._say(YELLOW, f"* connection to {self.url} lost; reconnecting")

    async def _banner(self) -> None:
        server = ""
        with contextlib.suppress(Exception):
            info = await self.client.sv_info()
            server = f" (server {info['serverVersion']})"
        print(f"ndb {__version__} connected to {self.url}{server}")
        print("help lists the commands, help COMMAND explains one; Tab completes; Ctrl-D quits.")

    async def run(self) -> Exit:
        path = history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(
            message=self._prompt,
            history=FileHistory(str(path)),
            completer=ShellCompleter(self.names, SHELL_COMMANDS),
            complete_while_typing=False,
            multiline=True,
            key_bindings=_enter_accepts_complete_input(),
            prompt_continuation=lambda width, line, wrap: "." * (width - 1) + " ",
            refresh_interval=0.5,
        )
        await self._banner()
        watcher = asyncio.ensure_future(self._watch())
        try:
            while True:
                try:
                    text = await session.prompt_async()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                if not await self.handle(text):
                    break
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return Exit.OK

    async def handle(self, text: str) -> bool:
        """Run one input; False when it asks to leave."""
        try:
            words = split_words(text)
        except ValueError as exc:
            self._say(RED, f"error: {exc}")
            return True
        if not words:
            return True
        if words[0] in ("exit", "quit"):
            return False
        if words[0] == "help":
            self._help(words[1:])
            return True
        try:
            call = prepare(words[0], self.variables.substitute(words)[1:])
        except (ValueError, TypeError) as exc:
            self._say(RED, f"error: {exc}")
            return True
        started = time.perf_counter()
        try:
            result = await self._interruptible(execute(self.client, call, raw=self.raw))
        except asyncio.CancelledError:
            self._say(YELLOW, "cancelled (if it was sent, the server may still run it)")
            return True
        except Exception as exc:
            elapsed = time.perf_counter() - started
            code, message = classify(exc)
            label = "refused" if code is Exit.REFUSED else "error"
            self._say(RED, f"{label}: {message}")
            self._say(DIM, f"({_ms(elapsed)})")
            return True
        finally:
            self.names.forget()
        elapsed = time.perf_counter() - started
        self.variables.record(result)
        if call.spec.returns_nothing and not self.raw:
            print(f"OK {DIM}({_ms(elapsed)}){RESET}", flush=True)
        else:
            self.printer.show(result)
            self._say(DIM, f"({_ms(elapsed)})")
        return True

    async def _interruptible(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work``; Ctrl-C cancels it (CancelledError) instead of ending the shell. The
        client keeps a cancelled request's place, so its late reply reaches nobody else."""
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
            return await task
        try:
            return await task
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    def _help(self, names: list[str]) -> None:
        try:
            if not names:
                print(overview(SHELL_COMMANDS))
            else:
                for name in names:
                    print(command_help(find_command(name)))
        except ValueError as exc:
            self._say(RED, f"error: {exc}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


class _Terminal:
    """The printer's stream: standard output, always styled as a terminal."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str, /) -> Any:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()
