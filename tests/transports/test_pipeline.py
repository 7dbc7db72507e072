"""``client.pipeline()`` in every flavour: commands queue, ``execute()`` sends them together and
returns results in order; failures raise or come back in their slot; validation happens before
anything is sent; a lost connection fails what was written (outcome unknown), never resent."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from ndb_proto.errors import (
    ConnectionLostError,
    RequestTooLargeError,
    ResponseError,
)
from tests.transports.flavours import Flavour
from tests.transports.proxy import C2S, S2C, Proxy


def pipeline(flavour: Flavour, c: Any) -> Any:
    return c.client.pipeline() if flavour.is_sync else c.pipeline()


async def execute(flavour: Flavour, pipe: Any, **options: Any) -> list[Any]:
    if flavour.is_sync:
        return await flavour.in_thread(functools.partial(pipe.execute, **options))
    return await pipe.execute(**options)  # type: ignore[no-any-return]


def test_results_come_back_in_order_and_sessions_are_bound(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            pipe = pipeline(flavour, c)
            assert pipe.kv_set({"a": 1, "b": [2]}) is pipe  # calls chain
            pipe.kv_get(key="a").kv_get(["a", "b", "zz"]).kv_contains(["b", "zz"]).kv_count()
            pipe.sh_create()
            assert len(pipe) == 6
            results = await execute(flavour, pipe)
            assert results[:5] == [None, 1, {"a": 1, "b": [2]}, ["b"], 2]
            session = results[5]
            assert isinstance(session, flavour.session_type)
            assert len(pipe) == 0  # emptied: ready for more
            assert await execute(
                flavour, pipe.sh_set(session, {"x": 1}).sh_get(session, key="x")
            ) == [
                None,
                1,
            ]
            assert await execute(flavour, pipe) == []  # nothing queued: nothing sent

    flavour.run(main)


def test_every_command_is_written_before_the_first_reply(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({"k": 0})
            sent_before = len(proxy.texts(C2S))
            replies_before = len(proxy.texts(S2C))
            proxy.stall()
            pipe = pipeline(flavour, c)
            for n in range(10):
                pipe.kv_set({f"k{n}": n})
            async with flavour.group() as group:
                outcome = group.start(execute, flavour, pipe)
                await flavour.until(lambda: len(proxy.texts(C2S)) == sent_before + 10)
                assert len(proxy.texts(S2C)) == replies_before
                proxy.resume()
            assert outcome.unwrap() == [None] * 10

    flavour.run(main)


def test_more_commands_than_the_window(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url, max_in_flight=3) as c:
            pipe = pipeline(flavour, c)
            for n in range(40):
                pipe.kv_set({f"k{n}": n}).kv_get(key=f"k{n}")
            results = await execute(flavour, pipe)
            assert results == [value for n in range(40) for value in (None, n)]

    flavour.run(main)


def test_a_failed_command_raises_or_comes_back_in_its_slot(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({"there": 1})
            pipe = pipeline(flavour, c)
            pipe.kv_add({"a": 1}).kv_update("missing", "$", 2).kv_set({"b": 2})
            with pytest.raises(ResponseError) as info:
                await execute(flavour, pipe)
            assert info.value.command == "KV_UPDATE"
            # The others ran all the same: each command has its own outcome.
            assert await c.kv_get(["a", "b"]) == {"a": 1, "b": 2}
            pipe.kv_get(key="a").kv_update("missing", "$", 2).kv_count()
            results = await execute(flavour, pipe, raise_on_error=False)
            assert results[0] == 1 and results[2] == 3
            assert isinstance(results[1], ResponseError)
            assert results[1].command == "KV_UPDATE"

    flavour.run(main)


def test_invalid_arguments_raise_when_queued_and_nothing_is_sent(
    flavour: Flavour, proxy: Proxy
) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_count()
            sent = len(proxy.texts(C2S))
            pipe = pipeline(flavour, c)
            pipe.kv_set({"a": 1})
            with pytest.raises(TypeError, match="keys"):
                pipe.kv_set("not a mapping")
            with pytest.raises(RequestTooLargeError):  # larger than max_message_size
                pipe.kv_set({"big": "x" * 2000})
            assert len(pipe) == 1
            assert len(proxy.texts(C2S)) == sent  # nothing is sent before execute
            pipe.kv_set({"after": 2})
            assert await execute(flavour, pipe, raise_on_error=False) == [None, None]
            assert len(pipe) == 0
            assert len(proxy.texts(C2S)) == sent + 2  # the two valid ones, not the large one
            assert await c.kv_get(["a", "after", "big"]) == {"a": 1, "after": 2}
            sent += 2
            with pipe:
                pipe.kv_set({"a": 1})
            assert len(pipe) == 0  # the block's end dropped it, unsent
            assert len(proxy.texts(C2S)) == sent + 1  # only the kv_get above

    flavour.run(main)


def test_a_lost_connection_fails_what_was_written_with_outcome_unknown(
    flavour: Flavour, proxy: Proxy
) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({"log": []})
            proxy.stall()
            pipe = pipeline(flavour, c)
            for n in range(5):
                pipe.kv_arr_append("log", [n])
            async with flavour.group() as group:
                outcome = group.start(
                    functools.partial(execute, flavour, pipe, raise_on_error=False)
                )
                await flavour.until(lambda: len(proxy.texts(C2S)) == 6)
                proxy.kill()
                proxy.resume()
            results = outcome.unwrap()
            assert len(results) == 5
            for error in results:
                assert isinstance(error, ConnectionLostError) and error.outcome_unknown is True
            # They reached the server once each, and nothing was resent.
            assert sorted(await c.kv_get(key="log")) == [0, 1, 2, 3, 4]
            appends = [t for t in proxy.texts(C2S) if "KV_ARR_APPEND" in t]
            assert sorted(json.loads(t)["KV_ARR_APPEND"]["items"][0] for t in appends) == list(
                range(5)
            )

    flavour.run(main)


def test_cancelling_an_async_execute_keeps_the_connection_in_step(
    flavour: Flavour, proxy: Proxy
) -> None:
    if flavour.is_sync:
        pytest.skip("a blocking call cannot be cancelled (its timeout is tested above)")

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({"a": "A", "b": "B"})
            proxy.stall()
            async with c.pipeline() as pipe:
                pipe.kv_contains(["a"]).kv_contains(["a"])  # bounded replies: both written
                async with flavour.group() as group:
                    outcome = group.start(pipe.execute)
                    await flavour.until(lambda: c._proto.in_flight == 3 - 1)
                    outcome.cancel()
                assert outcome.cancelled
            proxy.resume()
            assert await c.kv_get(key="b") == "B"

    flavour.run(main)
