"""``ndb dump FILE`` and ``ndb restore FILE``: the KV store to and from JSON lines.

A dump line is one key: ``{"name": value}``. Both directions send requests in batches that fit
the server's ``max_message_size`` (sizes measured with the command surface itself, so exactly
what will be sent) and keep a few batches in flight; the client's reply budget holds back
anything beyond what the server can buffer, and `dump` also sizes its batches so that one reply
stays well within that budget. A key that cannot fit in a request to this server is reported by
name and skipped; at the end both say how many keys they copied and what they skipped, and the
exit status is 1 when anything was skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import deque
from collections.abc import Awaitable, Iterator
from typing import IO, Any, TextIO, TypeVar

from ndb_cli.runner import Exit
from ndb_cli.words import UsageError
from ndb_proto import calls
from ndb_transports.asyncio import NdbClient

T = TypeVar("T")

IN_FLIGHT = 8
"""Batches sent ahead of the one being written out."""

REPLY_SHARE = 4
"""A dump batch aims at a reply of at most 1/REPLY_SHARE of the client's reply budget."""


class Progress:
    """A line on stderr: rewritten in place on a terminal, only the summary otherwise."""

    def __init__(self, stream: TextIO, verb: str) -> None:
        self.stream = stream
        self.verb = verb
        self.live = stream.isatty()

    def update(self, text: str) -> None:
        if self.live:
            self.stream.write(f"\r{self.verb}: {text}\x1b[K")
            self.stream.flush()

    def say(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
        self.stream.write(f"{self.verb}: {text}\n")
        self.stream.flush()


class Batcher:
    """Groups items into requests no larger than ``limit`` bytes.

    A request's size is its size with no items plus each item's own share plus one separator
    between items, measured by building the one-item request with the surface function.
    """

    def __init__(self, empty: int, limit: int) -> None:
        self.empty = empty
        self.limit = limit
        self.size = empty
        self.items: list[Any] = []

    def fits_alone(self, share: int) -> bool:
        return self.empty + share <= self.limit

    def add(self, item: Any, share: int) -> list[Any] | None:
        """Add ``item``; returns the previous batch when the item did not fit in it."""
        full = None
        extra = share + (1 if self.items else 0)
        if self.items and self.size + extra > self.limit:
            full, self.items, self.size = self.items, [], self.empty
            extra = share
        self.items.append(item)
        self.size += extra
        return full

    def take(self) -> list[Any]:
        items, self.items, self.size = self.items, [], self.empty
        return items


class Window:
    """Results of up to ``depth`` requests in flight, handed out in the order sent."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.pending: deque[asyncio.Future[Any]] = deque()

    async def send(self, request: Awaitable[T]) -> list[Any]:
        """Start ``request``; returns the results that had to be awaited to make room."""
        self.pending.append(asyncio.ensure_future(request))
        done = []
        while len(self.pending) > self.depth:
            done.append(await self.pending.popleft())
        return done

    async def rest(self) -> list[Any]:
        return [await self.pending.popleft() for _ in range(len(self.pending))]

    def cancel(self) -> None:
        for future in self.pending:
            future.cancel()


@contextlib.contextmanager
def _open(path: str, mode: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout if "w" in mode else sys.stdin
        return
    try:
        file = open(path, mode, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    with file:
        yield file


def _get_share(name: str, empty: int) -> int:
    return len(calls.kv_get([name]).payload) - empty


async def dump(client: NdbClient, path: str, errors: TextIO) -> Exit:
    """Write every key of the KV store to ``path`` as JSON lines."""
    progress = Progress(errors, "dump")
    names = await client.kv_keys()
    limit = client.options.max_message_size
    empty = len(calls.kv_get([]).payload)
    reply_target = max(1, client.options.reply_budget // REPLY_SHARE)
    too_large: list[str] = []
    written = 0
    value_size = float(limit)  # a guess until replies show the real average
    window = Window(IN_FLIGHT)

    def batches() -> Iterator[list[str]]:
        batch = Batcher(empty, limit)
        expected = 0.0
        for name in names:
            share = _get_share(name, empty)
            if not batch.fits_alone(share):
                too_large.append(name)
                continue
            guess = share + value_size
            if batch.items and expected + guess > reply_target:
                yield batch.take()
                expected = 0.0
            full = batch.add(name, share)
            if full is not None:
                yield full
                expected = 0.0
            expected += guess
        if batch.items:
            yield batch.take()

    def write(out: IO[str], found: dict[str, Any]) -> None:
        nonlocal written, value_size
        size = 0
        for name, value in found.items():
            line = json.dumps({name: value}, ensure_ascii=False, separators=(",", ":"))
            out.write(line + "\n")
            size += len(line)
        written += len(found)
        if found:
            value_size = 0.5 * value_size + 0.5 * size / len(found)
        progress.update(f"{written}/{len(names)} keys")

    with _open(path, "w") as out:
        try:
            for batch in batches():
                for found in await window.send(client.kv_get(batch)):
                    write(out, found)
            for found in await window.rest():
                write(out, found)
        finally:
            window.cancel()
        out.flush()
    vanished = len(names) - written - len(too_large)
    summary = f"wrote {written} keys to {path}"
    if vanished:
        summary += f"; {vanished} removed while dumping"
    progress.say(summary)
    for name in too_large:
        progress.say(f"skipped {name!r}: its name alone exceeds max_message_size ({limit})")
    return Exit.REFUSED if too_large else Exit.OK


def _entries(source: IO[str], progress: Progress, skipped: list[str]) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            skipped.append(f"line {number}: not a JSON object")
            progress.say(skipped[-1])
            continue
        yield from entry.items()


async def restore(client: NdbClient, path: str, errors: TextIO) -> Exit:
    """Store every key of the JSON lines in ``path`` (later lines win for a repeated key)."""
    progress = Progress(errors, "restore")
    limit = client.options.max_message_size
    empty = len(calls.kv_set({}).payload)
    skipped: list[str] = []
    stored = 0
    window = Window(IN_FLIGHT)

    async def store(keys: dict[str, Any]) -> int:
        await client.kv_set(keys)
        return len(keys)

    def count(done: list[int]) -> None:
        nonlocal stored
        stored += sum(done)
        progress.update(f"{stored} keys")

    async def send(batch: list[tuple[str, Any]]) -> None:
        count(await window.send(store(dict(batch))))

    with _open(path, "r") as source:
        batcher = Batcher(empty, limit)
        try:
            for name, value in _entries(source, progress, skipped):
                try:
                    share = len(calls.kv_set({name: value}).payload) - empty
                except ValueError as exc:
                    skipped.append(f"{name!r}: {exc}")
                    progress.say(f"skipped {skipped[-1]}")
                    continue
                if not batcher.fits_alone(share):
                    skipped.append(f"{name!r}: {share + empty} bytes > max_message_size {limit}")
                    progress.say(f"skipped {skipped[-1]}")
                    continue
                full = batcher.add((name, value), share)
                if full is not None:
                    await send(full)
            if batcher.items:
                await send(batcher.take())
            count(await window.rest())
        finally:
            window.cancel()
    summary = f"stored {stored} keys from {path}"
    if skipped:
        summary += f"; skipped {len(skipped)} (listed above)"
    progress.say(summary)
    return Exit.REFUSED if skipped else Exit.OK
