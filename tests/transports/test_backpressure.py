"""NemesisDB discards a reply when more than 128 KiB of its output to the connection is unread,
and with no request ids every later reply would then answer the wrong request. Whatever the
replies' sizes, each caller gets its own reply: nothing is written behind a reply of unbounded
size until it has been read, or, with a ``read_reply_limit``, the connection is given up as soon
as a reply breaks it. The memory server discards replies as NemesisDB does."""

from __future__ import annotations

from typing import Any

import pytest

from ndb_proto.errors import ConnectionLostError, ReadReplyLimitError
from ndb_server.memory import MemoryServer
from tests.transports.flavours import Flavour

VALUE = "v" * 900


async def fill(c: Any, keys: int) -> None:
    """``keys`` keys of about 1 KB each (KV_SET takes at most the 1 KiB message size)."""
    for i in range(keys):
        await c.kv_set({f"big{i}": VALUE})


def test_a_large_reply_does_not_cost_the_requests_behind_it_their_replies(
    flavour: Flavour, ndb_memory_server: MemoryServer
) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_memory_server.url) as c:
            await fill(c, 150)  # a KV_FIND of everything: about 140 KB, over 128 KiB
            await c.kv_set({"x": 1, "y": 2})
            outcomes = await flavour.gather(
                lambda: c.kv_find("$", rsp="kv"),
                lambda: c.kv_get(["x", "y"]),
                lambda: c.kv_count(),
                lambda: c.kv_get(["x"]),
            )
            found, xy, count, x = [o.unwrap() for o in outcomes]
            assert len(found) == 152 and found["big7"] == VALUE
            assert xy == {"x": 1, "y": 2}
            assert count == 152
            assert x == {"x": 1}
            assert await c.kv_get(["y"]) == {"y": 2}  # the connection is still in step

    flavour.run(main)


def test_concurrent_large_gets_each_get_their_own_reply(
    flavour: Flavour, ndb_memory_server: MemoryServer
) -> None:
    """Seven GETs of 25 to 60 keys of about 1 KB: together far more than 128 KiB."""

    async def main() -> None:
        async with flavour.connected(ndb_memory_server.url) as c:
            await fill(c, 60)
            sizes = [25, 60, 31, 47, 60, 38, 55]

            def get(size: int) -> Any:
                return lambda: c.kv_get([f"big{i}" for i in range(size)])

            outcomes = await flavour.gather(*[get(size) for size in sizes])
            for size, outcome in zip(sizes, outcomes, strict=True):
                assert outcome.unwrap() == {f"big{i}": VALUE for i in range(size)}

    flavour.run(main)


def test_with_a_read_reply_limit_small_reads_run_together_and_each_gets_its_own_reply(
    flavour: Flavour, ndb_memory_server: MemoryServer
) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_memory_server.url, read_reply_limit=2048) as c:
            await fill(c, 40)
            outcomes = await flavour.gather(
                *[(lambda i=i: c.kv_get([f"big{i}"])) for i in range(40)]
            )
            for i, outcome in enumerate(outcomes):
                assert outcome.unwrap() == {f"big{i}": VALUE}

    flavour.run(main)


def test_a_read_reply_limit_broken_by_the_data_costs_no_caller_a_wrong_reply(
    flavour: Flavour, ndb_memory_server: MemoryServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The audit's seven large GETs, under a limit they break by far: the server drops replies,
    so some calls fail with their outcome unknown, but whatever arrives is the caller's own
    reply, and the client carries on on a new connection."""

    async def main() -> None:
        async with flavour.connected(ndb_memory_server.url, read_reply_limit=4096) as c:
            await fill(c, 60)
            sizes = [25, 60, 31, 47, 60, 38, 55] * 3

            def get(size: int) -> Any:
                return lambda: c.kv_get([f"big{i}" for i in range(size)])

            outcomes = await flavour.gather(*[get(size) for size in sizes])
            for size, outcome in zip(sizes, outcomes, strict=True):
                if outcome.error is None:
                    assert outcome.value == {f"big{i}": VALUE for i in range(size)}
                else:
                    assert isinstance(outcome.error, ConnectionLostError), outcome
                    assert outcome.error.outcome_unknown is True
                    assert isinstance(outcome.error.__cause__, ReadReplyLimitError)
            assert "larger than read_reply_limit" in caplog.text  # the connection was given up
            assert await c.kv_get(["big3"]) == {"big3": VALUE}

    flavour.run(main)
