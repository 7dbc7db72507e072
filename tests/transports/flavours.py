"""One async-looking interface over the three client flavours, so test bodies are written once.

``Flavour.run(main)`` runs ``async def main()`` under the flavour's event loop: asyncio for the
asyncio client, trio for the trio client, and asyncio for the blocking client, whose every
blocking call then runs in a worker thread (`SyncFacade`). The blocking client is exercised for
real: each call blocks a thread of its own, and concurrent calls share the client as threads do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

import ndb_transports.asyncio as ndb_asyncio
import ndb_transports.sync as ndb_sync
import ndb_transports.trio as ndb_trio
from ndb_proto.reconnect import Backoff
from ndb_proto.session import Session

T = TypeVar("T")

FLAVOUR_NAMES = ("asyncio", "trio", "sync")

DEFAULT_OPTIONS: dict[str, Any] = {
    "timeout": 5.0,
    "connect_timeout": 2.0,
    "close_timeout": 1.0,
    "backoff": Backoff(initial=0.02, maximum=0.2),
}
"""Short limits so that nothing in a test can wait long."""

# Methods of the blocking client that do not block: called directly, not in a thread.
_DIRECT = frozenset({"is_connected", "is_websocket", "set_package_fail_file"})


class Outcome:
    """The result of a task started in a `Group`."""

    def __init__(self) -> None:
        self.done = False
        self.cancelled = False
        self.value: Any = None
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._scope: trio.CancelScope | None = None

    def cancel(self) -> None:
        """Cancel the task (asyncio ``task.cancel()``, or its trio cancel scope)."""
        if self._task is not None:
            self._task.cancel()
        elif self._scope is not None:
            self._scope.cancel()
        else:
            raise RuntimeError("not started, or a blocking call (which cannot be cancelled)")

    def unwrap(self) -> Any:
        assert self.done, "the task has not finished"
        if self.error is not None:
            raise self.error
        return self.value

    def __repr__(self) -> str:
        if not self.done:
            return "Outcome(pending)"
        return f"Outcome(error={self.error!r})" if self.error else f"Outcome(value={self.value!r})"


def _unwrap_arg(value: Any) -> Any:
    if isinstance(value, SessionFacade):
        return value._session
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap_arg(v) for v in value)
    return value


class _BlockingProxy:
    """Runs every callable attribute of ``target`` in a worker thread."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr) or name in _DIRECT:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(_unwrap_arg(a) for a in args)
            kwargs = {k: _unwrap_arg(v) for k, v in kwargs.items()}
            result = await asyncio.to_thread(functools.partial(attr, *args, **kwargs))
            if isinstance(result, ndb_sync.Session):
                return SessionFacade(result)
            return result

        call.__name__ = name
        return call


class SyncFacade(_BlockingProxy):
    """The blocking client, with awaitable methods (each call blocks a worker thread)."""

    @property
    def client(self) -> ndb_sync.NdbClient:
        return self._target  # type: ignore[no-any-return]

    async def __aenter__(self) -> SyncFacade:
        await asyncio.to_thread(self._target.__enter__)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self._target.__exit__, None, None, None)

    async def close(self) -> None:
        await asyncio.to_thread(self._target.close)


class SessionFacade(_BlockingProxy):
    @property
    def _session(self) -> Any:
        return self._target

    @property
    def tkn(self) -> int:
        return self._target.tkn  # type: ignore[no-any-return]

    @property
    def tknValid(self) -> bool:
        return self._target.tknValid  # type: ignore[no-any-return]


def unwrap(obj: Any) -> Any:
    """The real client or session behind a facade (the object itself otherwise)."""
    if isinstance(obj, _BlockingProxy):
        return obj._target
    return obj


class Group:
    """Tasks started with `start` run concurrently; leaving the block waits for all."""

    def __init__(self, flavour: Flavour) -> None:
        self.flavour = flavour
        self.outcomes: list[Outcome] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._nursery: trio.Nursery | None = None

    def start(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Outcome:
        outcome = Outcome()
        self.outcomes.append(outcome)

        if self._nursery is not None:
            outcome._scope = trio.CancelScope()  # cancellable before the task first runs

        async def run() -> None:
            try:
                if outcome._scope is not None:
                    with outcome._scope as scope:
                        outcome.value = await fn(*args)
                    outcome.cancelled = scope.cancelled_caught
                else:
                    outcome.value = await fn(*args)
            except asyncio.CancelledError:
                outcome.cancelled = True
            except Exception as exc:
                outcome.error = exc
            finally:
                outcome.done = True

        if self._nursery is not None:
            self._nursery.start_soon(run)
        else:
            task = asyncio.ensure_future(run())
            outcome._task = task
            self._tasks.append(task)
        return outcome


class Flavour:
    """The event loop and client of one flavour."""

    def __init__(self, name: str) -> None:
        assert name in FLAVOUR_NAMES
        self.name = name
        self.module: Any = {"asyncio": ndb_asyncio, "trio": ndb_trio, "sync": ndb_sync}[name]

    def __repr__(self) -> str:
        return self.name

    @property
    def is_trio(self) -> bool:
        return self.name == "trio"

    @property
    def is_sync(self) -> bool:
        return self.name == "sync"

    # -- running -------------------------------------------------------------------------------

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self.is_trio:
            return trio.run(fn, *args)

        async def main() -> T:
            if self.is_sync:
                # Enough worker threads that no blocking call waits for another to free one.
                pool = concurrent.futures.ThreadPoolExecutor(128, thread_name_prefix="ndb-test")
                asyncio.get_running_loop().set_default_executor(pool)
            return await fn(*args)

        return asyncio.run(main())

    async def sleep(self, seconds: float) -> None:
        if self.is_trio:
            await trio.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def checkpoint(self) -> None:
        await self.sleep(0)

    async def until(
        self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01
    ) -> None:
        """Wait until ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s: {predicate}")
            await self.sleep(interval)

    async def within(self, seconds: float, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, failing (TimeoutError) if it takes longer than ``seconds``, so
        that a hang is a quick test failure rather than a suite timeout."""
        if self.is_trio:
            try:
                with trio.fail_after(seconds):
                    return await awaitable
            except trio.TooSlowError:
                raise TimeoutError(f"still waiting after {seconds} s") from None
        try:
            return await asyncio.wait_for(awaitable, seconds)
        except asyncio.TimeoutError:
            raise TimeoutError(f"still waiting after {seconds} s") from None

    async def noticed_drop(self, client: Any, ready: Callable[[], Any] | None = None) -> None:
        """Wait until ``client`` can have seen its connection drop.

        asyncio/trio read in the background and see it at once (wait for ``ready``, by default
        for ``is_connected()`` to turn false). The blocking client has no background reader: it
        reads what arrived on an idle socket before its next write, so only give the drop a
        moment to arrive."""
        if self.is_sync:
            await self.sleep(0.1)
        else:
            await self.until(ready or (lambda: not client.is_connected()))

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking function without blocking the event loop."""
        if self.is_trio:
            return await trio.to_thread.run_sync(functools.partial(fn, *args))
        return await asyncio.to_thread(fn, *args)

    @asynccontextmanager
    async def group(self) -> AsyncIterator[Group]:
        group = Group(self)
        if self.is_trio:
            async with trio.open_nursery() as nursery:
                group._nursery = nursery
                yield group
        else:
            try:
                yield group
            finally:
                await asyncio.gather(*group._tasks, return_exceptions=True)
                for outcome in group.outcomes:
                    task = outcome._task
                    if task is not None and task.cancelled() and not outcome.done:
                        # Cancelled before it ever ran: the wrapper never started.
                        outcome.cancelled = outcome.done = True

    async def gather(self, *fns: Callable[[], Awaitable[Any]]) -> list[Outcome]:
        async with self.group() as group:
            for fn in fns:
                group.start(fn)
        return group.outcomes

    # -- clients -------------------------------------------------------------------------------

    def client(self, *args: Any, **options: Any) -> Any:
        """A client of this flavour (not opened), with short default limits."""
        merged = {**DEFAULT_OPTIONS, **options}
        client = self.module.NdbClient(*args, **merged)
        return SyncFacade(client) if self.is_sync else client

    @asynccontextmanager
    async def connected(self, uri: str, **options: Any) -> AsyncIterator[Any]:
        """An open client, closed on the way out."""
        client = self.client(**options)
        assert await client.open(uri) is True
        try:
            yield client
        finally:
            await client.close()

    @property
    def session_type(self) -> type[Session]:
        return self.module.Session  # type: ignore[no-any-return]
