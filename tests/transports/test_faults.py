"""Fault injection through the loopback proxy: dropped, stalled, half-written and refused
connections, failover and connect timeouts, in every flavour."""

from __future__ import annotations

import itertools
import json
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from ndb_proto.errors import (
    ClientClosedError,
    ConnectionLostError,
    NdbTimeoutError,
    RemoteProtocolError,
)
from ndb_proto.reconnect import Backoff
from ndb_server.thread import ServerThread
from tests.transports.flavours import Flavour, Outcome, unwrap
from tests.transports.proxy import C2S, S2C, Proxy, text_frame


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sent_requests(proxy: Proxy) -> Counter[str]:
    """How many times each request text went through the proxy, over all connections."""
    return Counter(proxy.texts(C2S))


def assert_lost(outcome: Outcome, outcome_unknown: bool) -> None:
    assert outcome.done
    error = outcome.error
    assert isinstance(error, ConnectionLostError), outcome
    assert not isinstance(error, ClientClosedError), outcome
    assert error.outcome_unknown is outcome_unknown, outcome


class Holds(Protocol):
    """What holds the replies back: the proxy (requests go through, replies wait) or a server's
    own ``stall`` (nothing is read until ``resume``)."""

    def stall(self) -> None: ...

    def resume(self) -> None: ...


async def two_written_then_given_up(
    flavour: Flavour, c: Any, holds: Holds, written: Callable[[], int], first_timeout: float
) -> None:
    """Replies held, two requests are written; the first times out and, reply_grace later
    (the client's option), the connection is given up, failing the second with outcome
    unknown. ``written()`` counts the requests written so far; replies flow again on return."""
    holds.stall()
    async with flavour.group() as group:
        first = group.start(lambda: c.kv_count(timeout=first_timeout))
        await flavour.until(lambda: written() == 1)
        second = group.start(lambda: c.kv_set({"b": 1}, timeout=5.0))
        await flavour.until(lambda: written() == 2)
    assert isinstance(first.error, NdbTimeoutError), first
    assert first.error.outcome_unknown is True
    assert_lost(second, outcome_unknown=True)
    holds.resume()


async def given_up_by_its_ping_then_reconnects(flavour: Flavour, c: Any, holds: Holds) -> None:
    """With keepalive on and replies held, the client's unanswered ping ends the connection;
    once replies flow again, the next request goes out on a new one."""
    holds.stall()
    await flavour.until(lambda: not c.is_connected(), timeout=3.0)
    holds.resume()
    assert await c.kv_count() == 0
    assert c.is_connected()


def waiting(client: Any) -> int:
    """Requests submitted and not resolved yet."""
    return int(unwrap(client)._proto.pending)


async def written_and_queued_fail_with_no_reconnect(
    flavour: Flavour, c: Any, holds: Holds, written: Callable[[], int], drop: Callable[[], None]
) -> None:
    """auto_reconnect=False and max_in_flight=1, replies held: one request written and three
    queued when the connection drops. The written one fails with outcome unknown, the queued
    ones with outcome known, and so does a request made after it: the client stays
    disconnected until an explicit reconnect, made here on return."""
    holds.stall()
    async with flavour.group() as group:
        first = group.start(c.kv_set, {"a": 1})
        await flavour.until(lambda: written() == 1)
        queued = [group.start(c.kv_set, {f"w{i}": i}) for i in range(3)]
        await flavour.until(lambda: waiting(c) == 4)
        drop()
        holds.resume()
    assert_lost(first, outcome_unknown=True)
    for outcome in queued:
        assert_lost(outcome, outcome_unknown=False)
    assert not c.is_connected()
    with pytest.raises(ConnectionLostError) as info:
        await c.kv_count()
    assert info.value.outcome_unknown is False


async def queued_request_times_out_unsent(
    flavour: Flavour, url: str, holds: Holds, written: Callable[[Any], int], timeout: float
) -> None:
    """max_in_flight=1 and replies held: the second request waits behind the first, unsent,
    and times out with outcome known; it never runs, and the first does."""
    async with flavour.connected(url, max_in_flight=1) as c:
        holds.stall()
        async with flavour.group() as group:
            first = group.start(c.kv_set, {"a": 1})
            await flavour.until(lambda: written(c) == 1)
            second = group.start(lambda: c.kv_set({"b": 2}, timeout=timeout))
            await flavour.until(lambda: second.done)
            holds.resume()
        assert isinstance(second.error, NdbTimeoutError)
        assert second.error.outcome_unknown is False
        assert first.unwrap() is None
        assert await c.kv_get(["a", "b"]) == {"a": 1}  # b was never sent


# -- a connection killed mid-pipeline ---------------------------------------------------------


def test_kill_fails_in_flight_once_and_sends_queued_after_reconnect(
    flavour: Flavour, proxy: Proxy
) -> None:
    """max_in_flight=2 with 5 requests: 2 written (their replies held back), 3 waiting. The
    connection dies: the 2 fail with outcome unknown, the 3 go out on the new connection."""

    async def main() -> None:
        async with flavour.connected(proxy.url, max_in_flight=2) as c:
            await c.kv_set({"log": []})
            proxy.stall()
            async with flavour.group() as group:
                outcomes = [group.start(c.kv_arr_append, "log", [i]) for i in range(5)]
                await flavour.until(lambda: len(proxy.texts(C2S)) >= 3)
                await flavour.sleep(0.2)  # the window is full: nothing else may be written
                assert len(proxy.texts(C2S)) == 3  # kv_set + 2 appends
                proxy.kill()
                proxy.resume()
            written = [json.loads(t)["KV_ARR_APPEND"]["items"][0] for t in proxy.texts(C2S)[1:3]]
            for index, outcome in enumerate(outcomes):
                if index in written:
                    assert_lost(outcome, outcome_unknown=True)
                else:
                    assert outcome.error is None, outcome
            assert sum(o.error is None for o in outcomes) == 3
            assert len(proxy.accepted) == 2
            # The server ran every request exactly once: the lost ones did reach it, and
            # nothing was resent.
            log = await c.kv_get(key="log")
            assert sorted(log) == [0, 1, 2, 3, 4]
            assert all(n == 1 for n in sent_requests(proxy).values())

    flavour.run(main)


def test_server_restart_while_requests_wait(flavour: Flavour) -> None:
    """The server goes away (close 1000); requests made meanwhile wait for the reconnect to a
    new server on the same port and then succeed, each run once."""
    port = free_port()
    first = ServerThread(port=port)
    first.start()
    second = ServerThread(port=port)
    try:

        async def main() -> None:
            async with flavour.connected(f"ws://127.0.0.1:{port}/") as c:
                await c.kv_set({"on": "first"})
                await flavour.in_thread(first.stop)
                await flavour.noticed_drop(c)
                async with flavour.group() as group:
                    outcomes = [group.start(c.kv_set, {f"k{i}": i}) for i in range(10)]
                    await flavour.sleep(0.3)  # they wait, with the server down
                    assert not any(o.done for o in outcomes)
                    await flavour.in_thread(second.start)
                assert [o.unwrap() for o in outcomes] == [None] * 10
                assert c.is_connected()
                assert await c.kv_count() == 10
                assert sorted(await c.kv_keys()) == sorted(f"k{i}" for i in range(10))

        flavour.run(main)
    finally:
        first.stop()
        second.stop()


def test_clean_close_by_the_peer_mid_request(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            proxy.stall()
            async with flavour.group() as group:
                lost = group.start(c.kv_set, {"a": 1})
                await flavour.until(lambda: len(proxy.texts(C2S)) == 1)
                proxy.close_clients()
                proxy.resume()
            assert_lost(lost, outcome_unknown=True)
            assert await c.kv_get(key="a") == 1
            assert len(proxy.accepted) == 2

    flavour.run(main)


@pytest.mark.parametrize("cut", [1, 2, 5, 20])
def test_half_written_reply_frame(flavour: Flavour, proxy: Proxy, cut: int) -> None:
    """Only the first bytes of a reply arrive, then the stream ends."""

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            proxy.cut_after(cut)
            with pytest.raises(ConnectionLostError) as info:
                await c.kv_count()
            assert info.value.outcome_unknown is True
            assert proxy.bytes[S2C] > 0
            assert await c.kv_count() == 0
            assert len(proxy.accepted) == 2

    flavour.run(main)


def test_cut_between_two_pipelined_replies(flavour: Flavour, proxy: Proxy) -> None:
    first_reply = len(text_frame('{"KV_SET_RSP":{"st":1}}'))

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            proxy.stall()
            async with flavour.group() as group:
                outcomes = [group.start(c.kv_set, {f"k{i}": i}) for i in range(2)]
                await flavour.until(lambda: len(proxy.texts(C2S)) == 2)
                proxy.cut_after(first_reply + 3)
                proxy.resume()
            ok = [o for o in outcomes if o.error is None]
            failed = [o for o in outcomes if o.error is not None]
            assert len(ok) == 1
            assert len(failed) == 1
            assert_lost(failed[0], outcome_unknown=True)
            assert await c.kv_count() == 2

    flavour.run(main)


# -- stalls and timeouts ----------------------------------------------------------------------


def test_stalled_connection_is_given_up_after_reply_grace(flavour: Flavour, proxy: Proxy) -> None:
    """The oldest request times out; reply_grace later its reply is presumed lost, so the
    connection is given up: the other request written on it fails (outcome unknown), and the
    client connects again."""

    async def main() -> None:
        async with flavour.connected(proxy.url, reply_grace=0.3) as c:
            await two_written_then_given_up(
                flavour, c, proxy, lambda: len(proxy.texts(C2S)), first_timeout=0.2
            )
            assert await c.kv_get(key="b") == 1  # it did reach the server
            assert len(proxy.accepted) == 2
            assert c.is_connected()

    flavour.run(main)


def test_request_after_the_grace_period_goes_to_a_new_connection(
    flavour: Flavour, proxy: Proxy
) -> None:
    """Once the grace period of a timed-out request has passed, the connection is known to be
    unusable: a new request must wait for the reconnect, not be written to the dead one."""

    async def main() -> None:
        async with flavour.connected(proxy.url, reply_grace=0.2) as c:
            proxy.stall()
            with pytest.raises(NdbTimeoutError):
                await c.kv_count(timeout=0.1)
            await flavour.sleep(0.5)  # past the deadline and the grace period
            async with flavour.group() as group:
                after = group.start(c.kv_set, {"after": 1})
                await flavour.until(lambda: after.done or len(proxy.accepted) >= 2)
                proxy.resume()
            assert after.unwrap() is None
            assert sent_requests(proxy)['{"KV_SET":{"keys":{"after":1}}}'] == 1
            assert await c.kv_get(key="after") == 1

    flavour.run(main)


def test_queued_request_times_out_unsent(flavour: Flavour, proxy: Proxy) -> None:
    def written(_client: Any) -> int:
        return len(proxy.texts(C2S))

    flavour.run(queued_request_times_out_unsent, flavour, proxy.url, proxy, written, 0.2)
    # Here the wire is watched too: b never went out.
    assert all(json.loads(t).get("KV_SET", {}).get("keys") != {"b": 2} for t in proxy.texts(C2S))


def test_request_soon_after_a_drop_waits_for_the_reconnect(flavour: Flavour, proxy: Proxy) -> None:
    """The connection is reset while the client is idle; a request made right after (not yet
    written when the connection dropped) is sent on the new connection and succeeds."""

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({"a": 1})
            proxy.kill()
            await flavour.sleep(0.1)  # the reset has arrived on the client's socket
            assert await c.kv_get(key="a") == 1
            assert len(proxy.accepted) == 2
            assert sent_requests(proxy)['{"KV_GET":{"keys":["a"]}}'] == 1

    flavour.run(main)


# -- without auto_reconnect -------------------------------------------------------------------


def test_without_auto_reconnect(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url, auto_reconnect=False, max_in_flight=1) as c:
            await written_and_queued_fail_with_no_reconnect(
                flavour, c, proxy, lambda: len(proxy.texts(C2S)), proxy.kill
            )
            assert len(proxy.accepted) == 1  # no automatic reconnect
            # An explicit reconnect still works.
            await c.reconnect()
            assert c.is_connected()
            assert await c.kv_get(["a", "w0"]) == {"a": 1}

    flavour.run(main)


def test_manual_reconnect(flavour: Flavour, proxy: Proxy) -> None:
    """reconnect() drops the connection at once (the request in flight fails, outcome unknown)
    and returns once a new one is open."""

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            await c.kv_set({"a": 1})
            proxy.stall()
            async with flavour.group() as group:
                in_flight = group.start(c.kv_get, ["a"])
                await flavour.until(lambda: len(proxy.texts(C2S)) == 2)
                reconnected = group.start(c.reconnect)
                await flavour.until(lambda: in_flight.done)
                assert not reconnected.done  # the new handshake is held back
                proxy.resume()
            assert_lost(in_flight, outcome_unknown=True)
            assert reconnected.unwrap() is None
            assert c.is_connected()
            assert len(proxy.accepted) == 2
            assert await c.kv_get(key="a") == 1

    flavour.run(main)


# -- reconnect backoff, pools, connect timeouts -----------------------------------------------


def test_reconnect_backs_off_while_refused(flavour: Flavour, proxy: Proxy) -> None:
    backoff = Backoff(initial=0.1, maximum=0.4, jitter=0.0)

    async def main() -> None:
        async with flavour.connected(proxy.url, backoff=backoff, timeout=10.0) as c:
            proxy.mode = "refuse"
            proxy.kill()
            await flavour.noticed_drop(c)
            async with flavour.group() as group:
                # A waiting request (it drives the blocking client's reconnects).
                waiting = group.start(c.kv_count)
                await flavour.until(lambda: len(proxy.accepted) >= 6, timeout=8)
                proxy.mode = "forward"
            assert waiting.unwrap() == 0
            attempts = proxy.accepted[1:]
            gaps = [b - a for a, b in itertools.pairwise(attempts)]
            # 0.1, 0.2, 0.4, 0.4 ... between refused attempts (jitter 0): never hammering.
            expected = [0.2, 0.4, 0.4, 0.4]
            for gap, wanted in zip(gaps, expected, strict=False):
                assert gap >= wanted * 0.8, gaps
            assert c.is_connected()

    flavour.run(main)


def test_connect_pool_skips_a_dead_server(flavour: Flavour, ndb_server: ServerThread) -> None:
    dead = f"ws://127.0.0.1:{free_port()}/"

    async def main() -> None:
        client = flavour.client()
        assert await client.connect_pool([dead, ndb_server.url]) is True
        assert await client.kv_count() == 0
        await client.close()
        assert await flavour.client().connect_pool([dead, dead]) is False

    flavour.run(main)


def test_connect_pool_fails_over_when_the_server_goes_down(
    flavour: Flavour, ndb_server: ServerThread, proxy_factory: Any
) -> None:
    a = proxy_factory(ndb_server.url)
    b = proxy_factory(ndb_server.url)

    async def main() -> None:
        async with flavour.connected(a.url) as probe:
            assert await probe.kv_count() == 0
        client = flavour.client()
        assert await client.connect_pool([a.url, b.url]) is True
        assert len(b.accepted) == 0
        a.mode = "refuse"
        a.kill()
        await flavour.noticed_drop(client, lambda: len(b.accepted) == 1 and client.is_connected())
        assert await client.kv_set({"via": "b"}) is None
        assert len(b.accepted) == 1
        assert b.texts(C2S) == ['{"KV_SET":{"keys":{"via":"b"}}}']
        await client.close()

    flavour.run(main)


def test_open_gives_up_on_a_handshake_that_never_completes(
    flavour: Flavour, proxy_factory: Any
) -> None:
    silent = proxy_factory(None, mode="blackhole")

    async def main() -> None:
        client = flavour.client(connect_timeout=0.3)
        assert await flavour.within(3.0, client.open(silent.url)) is False
        assert len(silent.accepted) == 1  # TCP was accepted: it is the handshake that timed out
        assert not client.is_connected()

    flavour.run(main)


def test_pool_moves_past_a_silent_server(
    flavour: Flavour, ndb_server: ServerThread, proxy_factory: Any
) -> None:
    silent = proxy_factory(None, mode="blackhole")

    async def main() -> None:
        client = flavour.client(connect_timeout=0.3)
        assert await flavour.within(3.0, client.connect_pool([silent.url, ndb_server.url]))
        assert await client.kv_count() == 0
        await client.close()

    flavour.run(main)


def test_reconnect_gives_up_on_a_silent_server(flavour: Flavour, proxy: Proxy) -> None:
    """A reconnect whose handshake never completes is abandoned after connect_timeout and
    retried; the waiting request goes out once the server answers again."""

    async def main() -> None:
        async with flavour.connected(proxy.url, connect_timeout=0.3) as c:
            proxy.mode = "blackhole"
            proxy.kill()
            await flavour.noticed_drop(c)
            async with flavour.group() as group:
                waiting = group.start(c.kv_set, {"a": 1})
                await flavour.until(lambda: len(proxy.accepted) >= 2)
                proxy.mode = "forward"
                await flavour.within(3.0, flavour.until(lambda: waiting.done, timeout=2.9))
            assert waiting.unwrap() is None
            assert len(proxy.accepted) >= 3

    flavour.run(main)


def test_upgrade_refused_by_a_plain_tcp_close(flavour: Flavour, proxy_factory: Any) -> None:
    refusing = proxy_factory(None, mode="refuse")

    async def main() -> None:
        client = flavour.client()
        assert await client.open(refusing.url) is False
        assert len(refusing.accepted) >= 1

    flavour.run(main)


# -- garbage from the server, and the dump file -----------------------------------------------


async def answered_with(flavour: Flavour, c: Any, proxy: Proxy, frame: bytes) -> Outcome:
    """Make a request and, once it is written, answer it with ``frame`` in place of the
    server's reply (held back until the request has failed); return its outcome."""
    proxy.stall()
    async with flavour.group() as group:
        pending = group.start(c.kv_count)
        await flavour.until(lambda: len(proxy.texts(C2S)) == 1)
        assert proxy.inject(frame) == 1
        await flavour.until(lambda: pending.done)
        proxy.resume()
    return pending


@pytest.mark.parametrize(
    ("frame", "dumped"),
    [
        (text_frame("{not json"), b"{not json"),
        (text_frame('{"KV_GET_RSP":{"keys":{},"st":1}}'), b'{"KV_GET_RSP":{"keys":{},"st":1}}'),
        (text_frame("[1]"), b"[1]"),
        (text_frame(b"\xff\xfe"), b"\xff\xfe"),
    ],
    ids=["not-json", "wrong-reply-name", "not-an-object", "invalid-utf8"],
)
def test_garbage_from_the_server(
    flavour: Flavour, proxy: Proxy, tmp_path: Any, frame: bytes, dumped: bytes
) -> None:
    fail_file = tmp_path / "fail.bin"

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            c.set_package_fail_file(str(fail_file))
            pending = await answered_with(flavour, c, proxy, frame)
            error = pending.error
            assert isinstance(error, ConnectionLostError), pending
            assert error.outcome_unknown is True
            assert isinstance(error.__cause__, RemoteProtocolError), repr(error.__cause__)
            assert dumped in fail_file.read_bytes()
            # The client closed that connection and made a new one.
            assert await c.kv_count() == 0
            assert len(proxy.accepted) == 2

    flavour.run(main)


def test_binary_frame_from_the_server(flavour: Flavour, proxy: Proxy, tmp_path: Any) -> None:
    fail_file = tmp_path / "fail.bin"

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            c.set_package_fail_file(fail_file)
            pending = await answered_with(flavour, c, proxy, b"\x82\x03abc")
            assert isinstance(pending.error, ConnectionLostError)
            assert isinstance(pending.error.__cause__, RemoteProtocolError)
            assert fail_file.read_bytes() == b"abc"
            assert await c.kv_count() == 0

    flavour.run(main)


def test_fail_file_can_be_turned_off(flavour: Flavour, proxy: Proxy, tmp_path: Any) -> None:
    fail_file = tmp_path / "fail.bin"

    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            c.set_package_fail_file(fail_file)
            c.set_package_fail_file(None)
            pending = await answered_with(flavour, c, proxy, text_frame("nope"))
            assert isinstance(pending.error, ConnectionLostError)
            assert not fail_file.exists()

    flavour.run(main)


# -- handshake refusals and replies too large -------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 404 File Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    ],
    ids=["404", "200", "not-http"],
)
def test_refused_upgrade_fails_to_open(
    flavour: Flavour, proxy_factory: Any, response: bytes
) -> None:
    refusing = proxy_factory(None, mode="respond")
    refusing.response = response

    async def main() -> None:
        client = flavour.client()
        assert await flavour.within(3.0, client.open(refusing.url)) is False
        assert not client.is_connected()
        assert len(refusing.accepted) == 1

    flavour.run(main)


def test_reply_larger_than_max_incoming_message_size(
    flavour: Flavour, ndb_server: ServerThread, tmp_path: Any
) -> None:
    fail_file = tmp_path / "fail.bin"

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as writer:
            await writer.kv_set({"big": "x" * 900})
            await writer.kv_set({"big2": "y" * 900})
        async with flavour.connected(ndb_server.url, max_incoming_message_size=1024) as c:
            c.set_package_fail_file(fail_file)
            assert await c.kv_get(key="big") == "x" * 900
            with pytest.raises(ConnectionLostError) as info:
                await c.kv_get(["big", "big2"])
            assert info.value.outcome_unknown is True
            assert isinstance(info.value.__cause__, RemoteProtocolError)
            assert fail_file.exists()
            assert await c.kv_get(key="big2") == "y" * 900  # on a new connection

    flavour.run(main)


def test_invalid_arguments_never_reach_the_wire(flavour: Flavour, proxy: Proxy) -> None:
    async def main() -> None:
        async with flavour.connected(proxy.url) as c:
            before = len(proxy.texts(C2S))
            calls = [
                lambda: c.kv_rmv([]),
                lambda: c.kv_get(["a"], key="a"),
                lambda: c.sh_get(1, ["a"], key="a"),
                lambda: c.kv_find(""),
                lambda: c.kv_find("$", rsp="values"),
                lambda: c.kv_update("k", "", 1),
                lambda: c.sh_create(0, extendOnGet=True),
                lambda: c.sh_create(-5),
                lambda: c.sh_rmv(1, []),
                lambda: c.sh_count(-1),
                lambda: c.kv_save("a/b"),
                lambda: c.sh_load(".."),
                lambda: c.kv_set({"x": "y" * 2000}),
                lambda: c.kv_set({"x": "\ud800"}),
                lambda: c.kv_set({"x": 2**64}),
            ]
            for call in calls:
                with pytest.raises((TypeError, ValueError)):
                    await call()
            assert len(proxy.texts(C2S)) == before
            assert await c.kv_count() == 0

    flavour.run(main)
