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


class LineReader:
    """``await reader.readline()``: the next line with its newline, or "" at end of input."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: deque[str] = deque()
        self.ended = False
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
            text = partial + decoder.decode(data, final=not data)
            lines = text.splitlines(keepends=True)
            partial = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
            if not data and partial:
                lines.append(partial)
            try:
                self.loop.call_soon_threadsafe(self._deliver, lines, not data)
            except RuntimeError:  # the loop is closed: nobody reads any more
                return
            if not data:
                return

    def _deliver(self, lines: list[str], ended: bool) -> None:
        self.lines.extend(lines)
        self.ended = ended
        self.more.set()

    async def readline(self) -> str:
        while not self.lines:
            if self.ended:
                return ""
            self.more.clear()
            await self.more.wait()
        return self.lines.popleft()
