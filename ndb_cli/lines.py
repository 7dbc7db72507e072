"""Reading standard input line by line without blocking the event loop.

A thread reads whatever is available (``os.read`` returns as soon as some bytes are there, so a
slow producer such as ``tail -f`` is served at once) and hands over every complete line of each
read together, so a large script costs one thread hop per read, not one per line.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import threading
from collections import deque

CHUNK = 1 << 16


def split_lines(text: str) -> tuple[list[str], str]:
    """The complete lines of ``text`` (each ending in one "\\n") and the unfinished rest.

    Lines end at "\\n" only, so line numbers agree with editors and ``wc -l`` (not at form feeds
    or Unicode separators, as `str.splitlines` would); a "\\r" before the "\\n" is dropped. A
    "\\r\\n" split between two reads is whole again, since the "\\r" waits in the rest."""
    *lines, rest = text.split("\n")
    return [line.removesuffix("\r") + "\n" for line in lines], rest


class LineReader:
    """``await reader.readline()``: the next line with its newline, or "" at end of input."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: deque[str] = deque()
        self.ended = False
        self.stopped = False
        self.more = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.thread = threading.Thread(target=self._read, name="ndb-stdin", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        partial = ""
        while True:
            try:
                data = os.read(self.fd, CHUNK)
            except OSError:
                data = b""
            lines, partial = split_lines(partial + decoder.decode(data, final=not data))
            if not data and partial.removesuffix("\r"):
                lines.append(partial.removesuffix("\r"))
            try:
                self.loop.call_soon_threadsafe(self._deliver, lines, not data)
            except RuntimeError:  # the loop is closed: nobody reads any more
                return
            if not data:
                return

    def _deliver(self, lines: list[str], ended: bool) -> None:
        if self.stopped:
            return
        self.lines.extend(lines)
        self.ended = ended
        self.more.set()

    def stop(self) -> None:
        """Nothing more is wanted: `readline` returns "" from now on, also one already waiting
        (the thread may stay blocked in its read; it is a daemon and ends with the process)."""
        self.stopped = True
        self.lines.clear()
        self.ended = True
        self.more.set()

    async def readline(self) -> str:
        while not self.lines:
            if self.ended:
                return ""
            self.more.clear()
            await self.more.wait()
        return self.lines.popleft()
