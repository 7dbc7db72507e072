"""The loops of ``ndb bench``, one per client flavour: asyncio tasks, trio tasks, threads.

Each opens one client, creates a session when a command needs a token, runs ``concurrency``
workers that each send one request at a time until the `Recorder` says the run is over, and
redraws the progress bar meanwhile. A refused request is counted; any other failure (the
connection lost, a timeout) ends the run and is raised.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ndb_cli.bench import BenchSettings, ProgressBar, Recorder, Workload, session_command
from ndb_cli.connection import ConnectionOptions
from ndb_proto.errors import ResponseError

PROGRESS_INTERVAL = 0.2


def _client_options(settings: BenchSettings, options: ConnectionOptions) -> dict[str, Any]:
    more = {"max_in_flight": settings.pipeline} if settings.pipeline else {}
    return options.client_options(auto_reconnect=False, **more)


def _needs_session(settings: BenchSettings) -> bool:
    return any(Workload.needs_token(spec) for spec in settings.mix.specs)


async def _worker(client: Any, number: int, settings: BenchSettings, recorder: Recorder) -> None:
    """One asyncio or trio worker: a request at a time until the run is over."""
    schedule = settings.mix.schedule()
    for step in _steps(number, len(schedule)):
        spec = schedule[step]
        kwargs = settings.workload.arguments(spec)
        if not recorder.take():
            return
        started = time.perf_counter()
        error: ResponseError | None = None
        try:
            await getattr(client, spec.name)(**kwargs)
        except ResponseError as exc:
            error = exc
        recorder.record(spec.name, time.perf_counter() - started, error)


async def _prepare(client: Any, settings: BenchSettings) -> None:
    if _needs_session(settings):
        session = await getattr(client, session_command().name)()
        settings.workload.token = session.tkn


def run_asyncio(
    settings: BenchSettings, options: ConnectionOptions, recorder: Recorder, bar: ProgressBar
) -> None:
    from ndb_transports.asyncio import NdbClient

    async def main() -> None:
        async with NdbClient(**_client_options(settings, options)) as client:
            options.require(await client.open(options.url))
            await _prepare(client, settings)
            recorder.start()
            workers = asyncio.gather(
                *(_worker(client, n, settings, recorder) for n in range(settings.concurrency))
            )
            try:
                while not workers.done():
                    bar.draw(recorder)
                    await asyncio.wait([workers], timeout=PROGRESS_INTERVAL)
                await workers
            finally:
                workers.cancel()
                recorder.finish()
                bar.clear()

    asyncio.run(main())


def run_trio(
    settings: BenchSettings, options: ConnectionOptions, recorder: Recorder, bar: ProgressBar
) -> None:
    import trio

    from ndb_transports.trio import NdbClient

    async def draw() -> None:
        while True:
            bar.draw(recorder)
            await trio.sleep(PROGRESS_INTERVAL)

    async def main() -> None:
        async with NdbClient(**_client_options(settings, options)) as client:
            options.require(await client.open(options.url))
            await _prepare(client, settings)
            recorder.start()
            try:
                async with trio.open_nursery() as outer:
                    outer.start_soon(draw)
                    async with trio.open_nursery() as workers:
                        for number in range(settings.concurrency):
                            workers.start_soon(_worker, client, number, settings, recorder)
                    outer.cancel_scope.cancel()
            finally:
                recorder.finish()
                bar.clear()

    trio.run(main)


def run_sync(
    settings: BenchSettings, options: ConnectionOptions, recorder: Recorder, bar: ProgressBar
) -> None:
    from ndb_transports.sync import NdbClient

    lock = threading.Lock()
    failures: list[BaseException] = []
    with NdbClient(**_client_options(settings, options)) as client:
        options.require(client.open(options.url))
        if _needs_session(settings):
            settings.workload.token = getattr(client, session_command().name)().tkn
        schedule = settings.mix.schedule()

        def worker(number: int) -> None:
            try:
                for step in _steps(number, len(schedule)):
                    spec = schedule[step]
                    with lock:
                        if failures or not recorder.take():
                            return
                        kwargs = settings.workload.arguments(spec)
                    started = time.perf_counter()
                    error: ResponseError | None = None
                    try:
                        getattr(client, spec.name)(**kwargs)
                    except ResponseError as exc:
                        error = exc
                    with lock:
                        recorder.record(spec.name, time.perf_counter() - started, error)
            except BaseException as exc:
                with lock:
                    failures.append(exc)

        threads = [
            threading.Thread(target=worker, args=(n,), daemon=True)
            for n in range(settings.concurrency)
        ]
        recorder.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                bar.draw(recorder)
                thread.join(PROGRESS_INTERVAL)
        recorder.finish()
        bar.clear()
    if failures:
        raise failures[0]


def _steps(number: int, length: int) -> Iterator[int]:
    """Positions in the mix for worker ``number``: workers start at different places, so
    every command of the mix runs at once."""
    step = number * 7
    while True:
        yield step % length
        step += 1


DRIVERS: dict[str, Callable[[BenchSettings, ConnectionOptions, Recorder, ProgressBar], None]] = {
    "asyncio": run_asyncio,
    "trio": run_trio,
    "sync": run_sync,
}
