"""What the three clients share beyond the core: options, event dispatch, logging and the dump
of undecodable data. Each flavour adds only its I/O and its way of waking a waiting caller."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine, Generator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from ndb_proto.client import ClientProtocol, State
from ndb_proto.errors import ClientClosedError
from ndb_proto.events import (
    Closed,
    Connected,
    ConnectionLost,
    Event,
    ReplyReceived,
    RequestFailed,
    UndecodableData,
)
from ndb_proto.options import positive_or_none
from ndb_transports._keywords import ClientKeywords
from ndb_transports._options import DEFAULT, ClientOptions, Default

logger = logging.getLogger("ndb")


def state_of(proto: ClientProtocol) -> State:
    """The core's state, read through a call so type checkers do not keep an old narrowing
    across the calls that change it."""
    return proto.state


class ClientBase(ClientKeywords):
    """Options, the current core, and the dispatch of its events to waiting callers. The
    constructor (`ClientKeywords`) is generated from the declared options."""

    def _configure(self, debug: bool, options: ClientOptions) -> None:
        """The constructor's work, once `ClientKeywords` has built and checked the options."""
        self.options = options
        self.debug = debug
        self._proto: ClientProtocol | None = None
        self._fail_file: str | None = None
        if debug:
            _enable_debug_logging()
        self._setup()

    # -- public, identical in every flavour ----------------------------------------------------

    def is_connected(self) -> bool:
        """True while a WebSocket connection is open."""
        proto = self._proto
        return proto is not None and proto.state is State.OPEN

    def is_websocket(self) -> bool:
        """True while connected: NemesisDB only speaks WebSocket (kept for API parity)."""
        return self.is_connected()

    def set_package_fail_file(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the raw bytes of anything from the server that cannot be decoded to ``path``
        (overwritten each time), for bug reports. None or "" turns it off."""
        self._fail_file = os.fspath(path) if path else None

    # -- helpers for the flavours --------------------------------------------------------------

    def _timeout(self, timeout: float | None | Default) -> float | None:
        """A call's ``timeout=``, checked as the option is (before anything is sent), or the
        client's default."""
        if timeout is DEFAULT:
            return self.options.timeout
        positive_or_none("timeout", timeout)
        return timeout

    def _deadline(self, timeout: float | None | Default, now: Callable[[], float]) -> float | None:
        """When a call given ``timeout`` (`DEFAULT`: the client's own) must be over, on the
        clock ``now`` reads; None when it has no limit. A timeout given is checked first
        (`_timeout`). The async clients' calls and pipelines all start here."""
        seconds = self._timeout(timeout)
        return None if seconds is None else now() + seconds

    def _new_protocol(self, uris: Sequence[str]) -> ClientProtocol:
        if isinstance(uris, str):
            raise TypeError("uris must be a list of URIs; use open(uri) for one")
        return self.options.protocol(uris)

    def _require_protocol(self) -> ClientProtocol:
        proto = self._proto
        if proto is None:
            raise ClientClosedError(
                "the client is not open; call open(uri) first", outcome_unknown=False
            )
        return proto

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if type(event) is ReplyReceived:
                self._resolve(event.request_id, event.value)
            elif type(event) is RequestFailed:
                self._reject(event.request_id, event.error)
            elif type(event) is Connected:
                logger.debug("connected to %s", event.endpoint.uri)
                self._connected(event)
            elif type(event) is ConnectionLost:
                logger.warning("connection to %s lost: %s", event.endpoint.uri, event.error)
                self._connection_lost(event)
            elif type(event) is Closed:
                logger.debug("client closed")
                self._closed()
            else:
                assert type(event) is UndecodableData
                self._dump(event)

    def _dump(self, event: UndecodableData) -> None:
        logger.warning("undecodable data from the server (%s): %r", event.reason, event.data[:200])
        if self._fail_file:
            try:
                with open(self._fail_file, "wb") as file:
                    file.write(event.data)
            except OSError:
                logger.exception("could not write %s", self._fail_file)
            else:
                logger.warning("wrote the undecodable data to %s", self._fail_file)

    # -- hooks each flavour implements ---------------------------------------------------------

    def _setup(self) -> None:
        raise NotImplementedError

    def _resolve(self, request_id: int, value: Any) -> None:
        raise NotImplementedError

    def _reject(self, request_id: int, error: BaseException) -> None:
        raise NotImplementedError

    def _connected(self, event: Connected) -> None:
        raise NotImplementedError

    def _connection_lost(self, event: ConnectionLost) -> None:
        raise NotImplementedError

    def _closed(self) -> None:
        raise NotImplementedError


class Closing:
    """What an async client's ``close()`` returns: closing has already started (so a plain
    ``client.close()`` works, as in NemesisDB's client); awaiting it waits for the end."""

    def __init__(self, wait_closed: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._wait_closed = wait_closed

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait_closed().__await__()


class AsyncLifecycle:
    """``close_and_wait`` and ``async with`` for the asyncio and trio clients."""

    def close(self) -> Closing:
        raise NotImplementedError

    async def close_and_wait(self) -> None:
        await self.close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close_and_wait()


_Self = TypeVar("_Self", bound=AsyncLifecycle)
_debug_handler: logging.Handler | None = None


def _enable_debug_logging() -> None:
    """NemesisDB's client turns on DEBUG logging to stderr for ``debug=True``; so do we, once."""
    global _debug_handler
    logger.setLevel(logging.DEBUG)
    if _debug_handler is None:
        _debug_handler = logging.StreamHandler()
        logger.addHandler(_debug_handler)
