"""Client pipelines: commands queued by one caller and sent together.

``client.pipeline()`` returns one of these. Each command method (generated, see
``_surface_pipeline.py``) checks its arguments, and the encoded size against the client's
``max_message_size``, at once and queues the command; ``execute()``
hands them all to the core in one step (``ClientProtocol.submit_many``: all or none, in order),
so they leave in as few writes as the window allows, and returns the results in order. A single
thread (or task) pipelines this way without sharing the client with others.

Each command still gets its own outcome, exactly as if it had been called alone: a failed
command raises its error from ``execute()`` (the first one, in order) unless
``raise_on_error=False``, which puts the exception in that command's slot instead; a connection
lost with commands written and unanswered fails those with ``ConnectionLostError``
(``outcome_unknown=True``), never resending them. One ``timeout`` covers the whole pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ndb_proto.client import check_request_size
from ndb_proto.commands import Request
from ndb_transports._options import DEFAULT, Default
from ndb_transports._surface_pipeline import PipelineCommands

__all__ = ["AsyncPipeline", "SyncPipeline"]

_Self = TypeVar("_Self", bound="_Pipeline")

ExecuteMany = Callable[[list[Request[Any]], "float | None | Default"], list[Any]]
"""A blocking client's ``_execute_many``: every request's value, or its exception, in order."""
AsyncExecuteMany = Callable[
    [list[Request[Any]], "float | None | Default"], Coroutine[Any, Any, list[Any]]
]
MakeSession = Callable[[int], Any]
"""Builds the flavour's bound session from a token (for ``sh_create`` results)."""


class _Pipeline(PipelineCommands):
    """The queue and the shaping of results, shared by the blocking and async pipelines."""

    __slots__ = ("_make_session", "_max_message_size", "_requests", "_sessions")

    def __init__(self, make_session: MakeSession, max_message_size: int) -> None:
        self._make_session = make_session
        self._max_message_size = max_message_size
        self._requests: list[Request[Any]] = []
        self._sessions: list[int] = []  # indexes of sh_create results, bound on the way out

    def _queue(self: _Self, request: Request[Any], *, session: bool = False) -> _Self:
        # Too large is refused here, as a single call would be, rather than by execute(): the
        # core takes a pipeline all or nothing, so one oversized command would stop the rest.
        check_request_size(request, self._max_message_size)
        if session:
            self._sessions.append(len(self._requests))
        self._requests.append(request)
        return self

    def __len__(self) -> int:
        """The number of commands queued and not yet executed."""
        return len(self._requests)

    def reset(self) -> None:
        """Drop the queued commands; nothing of them is sent."""
        self._requests = []
        self._sessions = []

    def _take(self) -> tuple[list[Request[Any]], list[int]]:
        requests, sessions = self._requests, self._sessions
        self.reset()
        return requests, sessions

    def _results(self, outcomes: list[Any], sessions: list[int], raise_on_error: bool) -> list[Any]:
        for index in sessions:
            outcome = outcomes[index]
            if not isinstance(outcome, BaseException):
                outcomes[index] = self._make_session(outcome.tkn)
        if raise_on_error:
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return outcomes

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.reset()


class SyncPipeline(_Pipeline):
    """Commands queued for one blocking ``execute()``; ``with client.pipeline() as pipe:``
    drops whatever was not executed when the block ends."""

    __slots__ = ("_execute_many",)

    def __init__(
        self, execute_many: ExecuteMany, make_session: MakeSession, max_message_size: int
    ) -> None:
        super().__init__(make_session, max_message_size)
        self._execute_many = execute_many

    def execute(
        self, *, raise_on_error: bool = True, timeout: float | None | Default = DEFAULT
    ) -> list[Any]:
        """Send every queued command and return their results, in order (the pipeline is then
        empty, ready for more). ``raise_on_error``: raise the first failed command's error
        (True), or put each failure's exception in its slot (False). ``timeout`` covers them
        all (the client's default unless given)."""
        requests, sessions = self._take()
        if not requests:
            return []
        return self._results(self._execute_many(requests, timeout), sessions, raise_on_error)


class AsyncPipeline(_Pipeline):
    """Commands queued for one awaited ``execute()`` (asyncio and trio); usable with ``with``
    or ``async with``, which drop whatever was not executed when the block ends."""

    __slots__ = ("_execute_many",)

    def __init__(
        self, execute_many: AsyncExecuteMany, make_session: MakeSession, max_message_size: int
    ) -> None:
        super().__init__(make_session, max_message_size)
        self._execute_many = execute_many

    async def execute(
        self, *, raise_on_error: bool = True, timeout: float | None | Default = DEFAULT
    ) -> list[Any]:
        """Send every queued command and return their results, in order (the pipeline is then
        empty, ready for more). ``raise_on_error``: raise the first failed command's error
        (True), or put each failure's exception in its slot (False). ``timeout`` covers them
        all (the client's default unless given). Cancelled, it gives up every command not yet
        answered without desynchronising the connection."""
        requests, sessions = self._take()
        if not requests:
            return []
        outcomes = await self._execute_many(requests, timeout)
        return self._results(outcomes, sessions, raise_on_error)

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.reset()
