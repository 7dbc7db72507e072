"""Commands read one per line (``ndb < script.txt``), pipelined over one connection.

Each line is checked and sent as soon as it is read, without waiting for earlier replies, and the
results are printed in the order of the lines. A line that uses ``$tkn`` or ``$_`` waits for the
lines before it, since it needs their results. Blank lines and lines starting with ``#`` are
skipped; a JSON value may continue over several lines. A refused command or a bad line is
reported on stderr with its line number and the script goes on; so does a timeout, or a reply
that cannot be read while the connection carries on. A lost connection ends it (the lines that
did not complete are named), and so does a closed output.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from ndb_cli.output import Printer
from ndb_cli.runner import Exit, classify, execute, prepare
from ndb_cli.variables import Variables
from ndb_cli.words import IncompleteInput, split_words
from ndb_proto.errors import ConnectionLostError
from ndb_transports.asyncio import NdbClient

MAX_PENDING = 1024
"""Lines read ahead of the printed results (the client itself bounds what is on the wire)."""

WATCH_INTERVAL = 0.2
"""Seconds between looks at the connection while the script waits for input."""

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


class LineSource(Protocol):
    """Where the script comes from (`ndb_cli.lines.LineReader` for standard input)."""

    async def readline(self) -> str:
        """The next line with its newline; "" at the end."""
        ...

    def stop(self) -> None:
        """Make `readline` return "" from now on, also when it is waiting."""
        ...


@dataclass
class _Line:
    number: int
    prints_nothing: bool
    outcome: asyncio.Future[Any]


def _numbers(lines: list[int]) -> str:
    """``line 4`` or ``lines 4-6, 9``."""
    spans: list[list[int]] = []
    for number in sorted(lines):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    return f"line{'s' if len(lines) > 1 else ''} {text}"


class ScriptRunner:
    """Runs a script against one client and prints results in order.

    Two tasks share the work: the reader (`run`) checks and sends each line and queues it, and
    the printer prints the queued outcomes in order. Whichever way the printer ends (the output
    was closed, say), the reader stops waiting for it and its error is raised; when the
    connection is lost the printer stops the reader, and names the lines that did not run."""

    def __init__(self, client: NdbClient, printer: Printer, errors: TextIO, raw: bool) -> None:
        self.client = client
        self.printer = printer
        self.errors = errors
        self.raw = raw
        self.variables = Variables()
        self.status = Exit.OK
        self.queue: asyncio.Queue[_Line | None] = asyncio.Queue(MAX_PENDING)
        self.outstanding: set[asyncio.Future[Any]] = set()
        self.submitted = 0
        self.printed = 0
        self.progress = asyncio.Event()
        self.stopped_at: int | None = None  # the line whose failure lost the connection
        self.not_run: list[int] = []
        self.connection_gone = False  # seen by the watcher, maybe with no line waiting
        self.read = 0  # the number of the last line read
        self.stop_reading: Callable[[], None] = lambda: None  # the source's stop, in run
        self.outcome_unknown: list[int] = []

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
            line = _Line(number, True, failed)
        else:
            task = asyncio.ensure_future(execute(self.client, call, raw=self.raw))
            line = _Line(number, call.spec.returns_nothing and not self.raw, task)
        self.outstanding.add(line.outcome)
        return line

    async def _printer_moves(self, printer: asyncio.Future[None]) -> None:
        """Wait until the printer has printed a line or ended; raise its error if it failed."""
        self.progress.clear()
        await self.progress.wait()
        if printer.done():
            printer.result()

    async def _print_results(self) -> None:
        try:
            while (line := await self.queue.get()) is not None:
                await self._report(line)
                self.outstanding.discard(line.outcome)
                self.printed += 1
                self.progress.set()
        finally:
            self.stop_reading()  # nothing more is read once nothing more can be printed
            self.progress.set()

    async def _report(self, line: _Line) -> None:
        try:
            result = await line.outcome
        except Exception as exc:
            if self.stopped_at is not None and isinstance(exc, ConnectionLostError):
                abandoned = self.outcome_unknown if exc.outcome_unknown else self.not_run
                abandoned.append(line.number)
                return
            code, message = classify(exc)
            self.errors.write(f"ndb: line {line.number}: {message}\n")
            self.errors.flush()
            self.status = max(self.status, code)
            if isinstance(exc, ConnectionLostError) or (
                code is Exit.CONNECTION and not self.client.is_connected()
            ):
                self.stopped_at = line.number
                self.stop_reading()  # do not wait for more input that will not run
            return
        self.variables.record(result)
        if not line.prints_nothing:
            self.printer.show(result)

    async def _watch_connection(self) -> None:
        """Stop reading when the connection drops between lines (the server went away while
        the script waited for input): no later line could run."""
        while True:  # the client offers no event for this; the shell polls the same way
            await asyncio.sleep(WATCH_INTERVAL)
            if not self.client.is_connected():
                break
        self.connection_gone = True
        self.stop_reading()

    def _report_abandoned(self) -> None:
        if self.stopped_at is not None:
            where = f"the script stopped at line {self.stopped_at}"
        elif self.connection_gone:
            where = f"the script stopped after line {self.read}"
            self.status = max(self.status, Exit.CONNECTION)
        else:
            return
        parts = [f"ndb: {where}, the connection is lost"]
        if self.outcome_unknown:
            parts.append(f"{_numbers(self.outcome_unknown)}: outcome unknown (sent, may have run)")
        if self.not_run:
            parts.append(f"{_numbers(self.not_run)}: not run")
        self.errors.write("; ".join(parts) + "; later lines were not read\n")
        self.errors.flush()

    async def run(self, source: LineSource) -> Exit:
        """Run every command ``source`` yields; the exit status is the most serious seen."""
        self.stop_reading = source.stop
        printer = asyncio.ensure_future(self._print_results())
        watcher = asyncio.ensure_future(self._watch_connection())
        try:
            async for number, words in read_commands(source.readline):
                if not isinstance(words, ValueError) and Variables.used_in(words):
                    while self.printed < self.submitted and self.stopped_at is None:
                        await self._printer_moves(printer)
                while self.queue.full():
                    await self._printer_moves(printer)
                self.read = number
                if self.stopped_at is not None or self.connection_gone or printer.done():
                    self.not_run.append(number)
                    break
                self.submitted += 1
                self.queue.put_nowait(self._submit(number, words))
            while self.queue.full():
                await self._printer_moves(printer)
            self.queue.put_nowait(None)
            await printer
            self._report_abandoned()
        finally:
            watcher.cancel()
            await self._abandon(printer)
        return self.status

    async def _abandon(self, printer: asyncio.Future[None]) -> None:
        """On the way out, however it ends: no task is left running or unread."""
        printer.cancel()
        for outcome in self.outstanding:
            outcome.cancel()
        await asyncio.gather(printer, *self.outstanding, return_exceptions=True)
