"""Commands read one per line (``ndb < script.txt``), pipelined over one connection.

Each line is checked and sent as soon as it is read, without waiting for earlier replies, and the
results are printed in the order of the lines. A line that uses ``$tkn`` or ``$_`` waits for the
lines before it, since it needs their results. Blank lines and lines starting with ``#`` are
skipped; a JSON value may continue over several lines. A refused command or a bad line is
reported on stderr with its line number and the script goes on; a lost connection ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ndb_cli.output import Printer
from ndb_cli.runner import Exit, classify, execute, prepare
from ndb_cli.variables import Variables
from ndb_cli.words import IncompleteInput, split_words
from ndb_transports.asyncio import NdbClient

MAX_PENDING = 1024
"""Lines read ahead of the printed results (the client itself bounds what is on the wire)."""

ReadLine = Callable[[], Awaitable[str]]


async def read_commands(read_line: ReadLine) -> AsyncIterator[tuple[int, list[str] | ValueError]]:
    """(line number, words) for each command, or the error that makes the line unusable. A
    command continues over the next lines while a JSON string or bracket is open."""
    number = 0
    while line := await read_line():
        number += 1
        start, text = number, line
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        while True:
            try:
                yield start, split_words(text)
            except IncompleteInput as exc:
                more = await read_line()
                if more:
                    number += 1
                    text += more
                    continue
                yield start, exc
            except ValueError as exc:
                yield start, exc
            break


@dataclass
class _Line:
    number: int
    prints_nothing: bool
    outcome: asyncio.Future[Any]


class ScriptRunner:
    """Runs a script against one client and prints results in order."""

    def __init__(self, client: NdbClient, printer: Printer, errors: TextIO, raw: bool) -> None:
        self.client = client
        self.printer = printer
        self.errors = errors
        self.raw = raw
        self.variables = Variables()
        self.status = Exit.OK
        self.queue: asyncio.Queue[_Line | None] = asyncio.Queue(MAX_PENDING)
        self.submitted = 0
        self.printed = 0
        self.progress = asyncio.Event()
        self.stopped = False

    def _submit(self, number: int, words: list[str] | ValueError) -> _Line:
        loop = asyncio.get_running_loop()
        try:
            if isinstance(words, ValueError):
                raise words
            values = self.variables.substitute(words)
            call = prepare(words[0], values[1:])
        except (ValueError, TypeError) as exc:
            failed: asyncio.Future[Any] = loop.create_future()
            failed.set_exception(exc)
            return _Line(number, True, failed)
        task = asyncio.ensure_future(execute(self.client, call, raw=self.raw))
        return _Line(number, call.spec.returns_nothing and not self.raw, task)

    async def _wait_printed(self) -> None:
        while self.printed < self.submitted and not self.stopped:
            self.progress.clear()
            await self.progress.wait()

    async def _print_results(self) -> None:
        while (line := await self.queue.get()) is not None:
            if self.stopped:
                line.outcome.cancel()
            else:
                await self._report(line)
            self.printed += 1
            self.progress.set()

    async def _report(self, line: _Line) -> None:
        try:
            result = await line.outcome
        except Exception as exc:
            code, message = classify(exc)
            self.errors.write(f"ndb: line {line.number}: {message}\n")
            self.errors.flush()
            self.status = max(self.status, code)
            self.stopped = code is Exit.CONNECTION
            return
        self.variables.record(result)
        if not line.prints_nothing:
            self.printer.show(result)

    async def run(self, read_line: ReadLine) -> Exit:
        """Run every command ``read_line`` yields; the exit status is the most serious seen."""
        printer = asyncio.ensure_future(self._print_results())
        try:
            async for number, words in read_commands(read_line):
                if self.stopped:
                    break
                if not isinstance(words, ValueError) and Variables.used_in(words):
                    await self._wait_printed()
                self.submitted += 1
                await self.queue.put(self._submit(number, words))
            await self.queue.put(None)
            await printer
        finally:
            printer.cancel()
        return self.status
