"""A raw WebSocket client for wire tests: sends exactly the frames a test asks for (text, binary,
invalid UTF-8, oversized), reads replies, and tells a dropped TCP connection from a close frame."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)


class Dropped(Exception):
    """The server closed TCP without a close frame."""


class ClosedByServer(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code


class RawClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(ws.send(Request(host=f"{parts.hostname}:{parts.port}", target="/")))
        self.ws = ws
        self.pending: list[Any] = []
        while not any(isinstance(e, AcceptConnection) for e in self.pending):
            self._feed()
        self.pending = [e for e in self.pending if not isinstance(e, AcceptConnection)]

    def _feed(self) -> None:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            else:
                self.pending.append(event)

    def send_text(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(text)))

    def send_json(self, obj: Any) -> None:
        self.send_text(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    def send_binary(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data)))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_text(self) -> str:
        parts: list[str] = []
        while True:
            while not self.pending:
                self._feed()
            event = self.pending.pop(0)
            if isinstance(event, CloseConnection):
                if event.code == 1006:
                    raise Dropped()
                raise ClosedByServer(event.code, event.reason or "")
            assert isinstance(event, TextMessage), event
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts)

    def recv_json(self) -> Any:
        return json.loads(self.recv_text())

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
