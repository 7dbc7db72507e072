"""The whole API, in every flavour, against the embedded server: return shapes, argument checks,
and the server's error replies surfacing as `ResponseError` with the right status and body."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

import ndb_proto
from ndb_proto.errors import RequestTooLargeError, ResponseError
from ndb_proto.status import Status
from ndb_server.thread import ServerThread
from tests.transports.flavours import Flavour, unwrap


async def response_error(awaitable: Any, status: int, rsp: dict[str, Any] | None = None) -> Any:
    """Await ``awaitable``; it must raise ResponseError with ``status`` (and body ``rsp``)."""
    with pytest.raises(ResponseError) as info:
        await awaitable
    error = info.value
    assert error.status == status
    assert isinstance(error.status, Status)
    assert error.status.name in str(error), "the message names the status"
    assert str(int(status)) in str(error)
    if rsp is not None:
        assert error.rsp == rsp
    return error


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- opening ---------------------------------------------------------------------------------


def test_open_and_connection_state(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        client = flavour.client()
        assert client.is_connected() is False
        assert client.is_websocket() is False
        assert await client.open(ndb_server.url) is True
        assert client.is_connected() is True
        assert client.is_websocket() is True
        assert await client.kv_count() == 0
        await client.close()
        assert client.is_connected() is False
        assert client.is_websocket() is False

    flavour.run(main)


def test_open_accepts_any_path_and_query(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url + "anything?x=1") as client:
            assert await client.kv_count() == 0

    flavour.run(main)


def test_debug_constructor_argument(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        client = flavour.client(True)  # NdbClient(debug=True), positionally as upstream
        assert unwrap(client).debug is True
        assert await client.open(ndb_server.url)
        await client.kv_set({"d": 1})
        await client.close()
        assert unwrap(flavour.client()).debug is False

    flavour.run(main)


@pytest.mark.parametrize("uri", ["", "http://127.0.0.1:1/", "ws://", "ws://u:p@127.0.0.1:1/"])
def test_open_rejects_bad_uris(flavour: Flavour, uri: str) -> None:
    async def main() -> None:
        client = flavour.client()
        with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract
            await client.open(uri)
        assert client.is_connected() is False

    flavour.run(main)


def test_connect_pool_refuses_a_bare_string(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        with pytest.raises(TypeError):
            await flavour.client().connect_pool(ndb_server.url)

    flavour.run(main)


def test_open_to_a_closed_port_returns_false(flavour: Flavour) -> None:
    port = free_port()

    async def main() -> None:
        client = flavour.client()
        assert await client.open(f"ws://127.0.0.1:{port}/") is False
        assert client.is_connected() is False
        with pytest.raises(ndb_proto.ClientClosedError):
            await client.kv_count()

    flavour.run(main)


def test_methods_before_open_raise_client_closed(flavour: Flavour) -> None:
    async def main() -> None:
        client = flavour.client()
        with pytest.raises(ndb_proto.ClientClosedError) as info:
            await client.kv_set({"a": 1})
        assert info.value.outcome_unknown is False

    flavour.run(main)


def test_open_again_replaces_the_connection(flavour: Flavour, ndb_server_factory: Any) -> None:
    first = ndb_server_factory()
    second = ndb_server_factory()

    async def main() -> None:
        client = flavour.client()
        assert await client.open(first.url)
        await client.kv_set({"where": "first"})
        assert await client.open(second.url)
        assert await client.kv_get(key="where") is None
        await client.kv_set({"where": "second"})
        await client.close()

    flavour.run(main)
    assert first.server.engine is not second.server.engine


def test_exports(flavour: Flavour) -> None:
    module = flavour.module
    assert module.ResponseError is ResponseError
    assert issubclass(module.Session, ndb_proto.Session)
    assert set(module.__all__) >= {"NdbClient", "ResponseError", "Session"}


def test_invalid_options_are_refused(flavour: Flavour) -> None:
    with pytest.raises(ValueError, match="timeout"):
        flavour.client(timeout=0)
    with pytest.raises(TypeError, match="ssl"):
        flavour.client(ssl="yes")


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, ValueError),
        (0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (1e300, ValueError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
def test_a_calls_invalid_timeout_is_refused_before_anything_is_sent(
    flavour: Flavour, ndb_memory_server: Any, timeout: object, error: type[Exception]
) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_memory_server.url) as c:
            with pytest.raises(error, match="timeout"):
                await c.kv_set({"a": 1}, timeout=timeout)
            assert c.is_connected()
            assert await c.kv_count(timeout=None) == 0  # the kv_set was never sent

    flavour.run(main)


# -- KV --------------------------------------------------------------------------------------


def test_kv_commands_and_return_shapes(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            assert await c.kv_set({"username": "billy", "password": "billy_passy"}) is None
            assert await c.kv_get(("username",)) == {"username": "billy"}
            assert await c.kv_get(["username", "password", "nope"]) == {
                "username": "billy",
                "password": "billy_passy",
            }
            assert await c.kv_get(key="username") == "billy"
            assert await c.kv_get(key="nope") is None
            assert await c.kv_get() == {}
            assert await c.kv_add({"username": "other", "new": [1, 2]}) is None
            assert await c.kv_get(key="username") == "billy"
            assert await c.kv_get(key="new") == [1, 2]
            count = await c.kv_count()
            assert count == 3
            assert type(count) is int
            assert await c.kv_contains(["new", "x", "username", "new"]) == [
                "new",
                "username",
                "new",
            ]
            assert sorted(await c.kv_keys()) == ["new", "password", "username"]
            assert await c.kv_rmv(["password", "zz"]) is None
            assert await c.kv_count() == 2
            assert await c.kv_clear_set({"x": 1, "y": 2, "z": 3}) == 2
            assert sorted(await c.kv_keys()) == ["x", "y", "z"]
            assert await c.kv_clear() == 3
            assert await c.kv_keys() == []
            assert await c.kv_clear() == 0

    flavour.run(main)


def test_kv_values_round_trip(flavour: Flavour, ndb_server: ServerThread) -> None:
    values = {
        "str": 'h\u00e9llo/"q"',
        "int": 42,
        "neg": -7,
        "u64": 2**64 - 1,
        "float": 34.5,
        "t": True,
        "null": None,
        "arr": [1, "two", [3]],
        "obj": {"z": 1, "y": {"b": 2, "a": 1}},
        "": "empty key",
    }

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set(values)
            assert await c.kv_get(list(values)) == values

    flavour.run(main)


def test_kv_get_argument_checks(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            with pytest.raises(ValueError, match="key"):
                await c.kv_get(["a"], key="b")
            with pytest.raises(TypeError, match="keys"):
                await c.kv_get("abc")
            with pytest.raises(TypeError, match="keys"):
                await c.kv_get([1])
            with pytest.raises(ValueError, match="keys"):
                await c.kv_rmv([])
            with pytest.raises(TypeError, match="keys"):
                await c.kv_set(["a"])
            with pytest.raises(TypeError, match="keys"):
                await c.kv_set({1: "a"})
            with pytest.raises(ValueError, match="keys"):
                await c.kv_set({"a": float("nan")})
            with pytest.raises(ValueError, match="name"):
                await c.kv_save("")
            with pytest.raises(ValueError, match="name"):
                await c.kv_load("../x")
            # Nothing was sent: the connection is in step and the store untouched.
            assert await c.kv_count() == 0

    flavour.run(main)


def test_request_too_large_is_refused_before_sending(
    flavour: Flavour, ndb_server: ServerThread
) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"a": 1})
            with pytest.raises(RequestTooLargeError, match="max_message_size"):
                await c.kv_set({"big": "x" * 2000})
            assert issubclass(RequestTooLargeError, ValueError)
            # The server did not drop the connection: the same one still works.
            assert await c.kv_get(key="a") == 1
            assert c.is_connected()

    flavour.run(main)


def test_max_message_size_matches_a_larger_server_limit(
    flavour: Flavour, ndb_server_factory: Any
) -> None:
    server = ndb_server_factory(max_payload=8192)

    async def main() -> None:
        async with flavour.connected(server.url, max_message_size=8192) as c:
            await c.kv_set({"big": "x" * 5000})
            assert await c.kv_get(key="big") == "x" * 5000
        # Beyond what any server accepts: refused, at the latest by open(), before any I/O.
        with pytest.raises(ValueError, match="max_message_size"):
            await flavour.client(max_message_size=8193).open(server.url)

    flavour.run(main)


def test_large_replies(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            for index in range(300):
                await c.kv_set({f"k{index:04}": "v" * 900})
            everything = await c.kv_get([f"k{index:04}" for index in range(100)])
            assert len(everything) == 100
            keys = await c.kv_keys()
            assert len(keys) == 300

    flavour.run(main)


def test_kv_find(flavour: Flavour, ndb_server: ServerThread) -> None:
    cars = {
        "car1": {"make": "Ford", "doors": 5},
        "car2": {"make": "VW", "doors": 3},
        "note": "hello",
        "fleet": [{"make": "Kia", "doors": 5}],
    }

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set(cars)
            assert await c.kv_find("$[?(@.doors > 4)]") == ["fleet"]
            assert await c.kv_find("$.make", "keys") == ["car1", "car2"] or sorted(
                await c.kv_find("$.make", "keys")
            ) == ["car1", "car2"]
            assert await c.kv_find("$.make", rsp="paths") == ["$['make']", "$['make']"]
            assert await c.kv_find("$[?(@.make == 'Kia')]", rsp="kv") == {
                "fleet": [{"doors": 5, "make": "Kia"}]
            }
            found = await c.kv_find("$.doors", rsp="kv")
            assert found == {"car1": cars["car1"], "car2": cars["car2"]}
            assert await c.kv_find("$.make", keys=["car2", "car1", "nope"]) == ["car2", "car1"]
            assert await c.kv_find("$.make", "keys", []) in (["car1", "car2"], ["car2", "car1"])
            # A path the server cannot compile: status 4, a body with st only.
            await response_error(c.kv_find("$[?("), Status.PATH_INVALID, {"st": 4})
            # Refused locally.
            with pytest.raises(ValueError, match="path"):
                await c.kv_find("")
            with pytest.raises(ValueError, match="rsp"):
                await c.kv_find("$", rsp="values")
            assert await c.kv_count() == 4

    flavour.run(main)


def test_kv_update(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"p": {"name": "a", "tags": [1, 2], "n": {"name": "b"}}})
            assert await c.kv_update("p", "$.name", "z") == 1
            assert await c.kv_update("p", "$..name", None) == 2
            assert await c.kv_update("p", "$.missing", 1) == 0
            assert await c.kv_get(key="p") == {"n": {"name": None}, "name": None, "tags": [1, 2]}
            await response_error(
                c.kv_update("nope", "$", 1), Status.KEY_NOT_EXIST, {"cnt": 0, "st": 22}
            )
            error = await response_error(
                c.kv_update("p", "$[?(", 1), Status.UNKNOWN, {"m": "", "st": 1000}
            )
            assert error.command == "KV_UPDATE"
            with pytest.raises(ValueError, match="path"):
                await c.kv_update("p", "", 1)
            assert await c.kv_update("p", "$", [1]) == 1
            assert await c.kv_get(key="p") == [1]

    flavour.run(main)


def test_kv_arr_append(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            await c.kv_set({"arr": [1], "obj": {"list": [], "s": "x"}, "n": 5})
            assert await c.kv_arr_append("arr", [2, [3]]) is None
            assert await c.kv_arr_append("obj", ["a"], name="list") is None
            assert await c.kv_arr_append("obj", ["a"], "s") is None  # not an array: no-op
            assert await c.kv_arr_append("arr", ()) is None
            await response_error(
                c.kv_arr_append("obj", ["a"], name="missing"), Status.UNKNOWN, {"st": 1000}
            )
            await response_error(c.kv_arr_append("n", [1]), Status.UNKNOWN, {"st": 1000})
            await response_error(c.kv_arr_append("nope", [1]), Status.KEY_NOT_EXIST, {"st": 22})
            assert await c.kv_get(["arr", "obj"]) == {
                "arr": [1, 2, [3]],
                "obj": {"list": ["a"], "s": "x"},
            }
            with pytest.raises(TypeError, match="items"):
                await c.kv_arr_append("arr", "abc")

    flavour.run(main)


def test_save_disabled_and_load_missing(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            assert await c.sv_info() == {"persistEnabled": False, "serverVersion": "0.7.4"}
            error = await response_error(
                c.kv_save("x"), Status.COMMAND_DISABLED, {"m": "", "st": 14}
            )
            assert error.command == "KV_SAVE"
            assert "KV_SAVE" in str(error)
            await response_error(c.sh_save("x"), Status.COMMAND_DISABLED, {"m": "", "st": 14})
            await response_error(
                c.kv_load("never_saved"),
                Status.LOAD_ERROR,
                {"name": "never_saved", "st": 142},
            )
            await response_error(
                c.sh_load("never_saved"),
                Status.LOAD_ERROR,
                {"name": "never_saved", "st": 142},
            )

    flavour.run(main)


def test_save_and_load(flavour: Flavour, ndb_server_factory: Any, tmp_path: Path) -> None:
    server = ndb_server_factory(persist_dir=tmp_path, max_payload=8192)

    async def main() -> None:
        async with flavour.connected(server.url, max_message_size=8192) as c:
            assert await c.sv_info() == {"persistEnabled": True, "serverVersion": "0.7.4"}
            # An empty store: saved, and loads back as 0 keys (status 140 is not an error).
            assert await c.kv_save("empty_ds") is None
            assert await c.kv_load("empty_ds") == 0
            await c.kv_set({"a": 1, "b": {"c": [1, 2]}})
            assert await c.kv_save("ds1") is None
            assert await c.kv_clear() == 2
            await c.kv_set({"a": 99, "z": 0})
            loaded = await c.kv_load("ds1")
            assert loaded == 2
            assert type(loaded) is int
            assert await c.kv_get(["a", "b", "z"]) == {"a": 1, "b": {"c": [1, 2]}, "z": 0}
            await response_error(
                c.kv_load("never_saved"), Status.LOAD_ERROR, {"name": "never_saved", "st": 142}
            )

            s1 = await c.sh_create()
            s2 = await c.sh_create(100, deleteSessionOnExpire=True)
            await s1.set({"a": 1})
            await c.sh_set(s2, {"b": 2, "c": 3})
            assert await c.sh_save("sess1") is None
            assert await c.sh_load("sess1") == {"keys": 0, "name": "sess1", "sessions": 0}
            assert await c.sh_end_all() == 2
            assert await c.sh_load("sess1") == {"keys": 3, "name": "sess1", "sessions": 2}
            assert await c.sh_get(s2, ["b", "c"]) == {"b": 2, "c": 3}
            info = await c.sh_info(s2.tkn)
            assert info["expires"] is True
            assert info["expiry"]["duration"] == 100
            assert info["expiry"]["deleteSession"] is True
            # Only the listed sessions.
            assert await c.sh_save("sel", tkns=[s1, 12345]) is None
            assert await c.sh_end_all() == 2
            assert await c.sh_load("sel") == {"keys": 1, "name": "sel", "sessions": 1}
            assert await c.sh_session_exists([s1, s2]) == [s1.tkn]
            await response_error(
                c.sh_load("never_saved"), Status.LOAD_ERROR, {"name": "never_saved", "st": 142}
            )
            # A dataset with no sessions: 142 (what 0.7.4 answers), an error.
            await c.sh_end_all()
            await c.sh_save("nosessions")
            await response_error(
                c.sh_load("nosessions"),
                Status.LOAD_ERROR,
                {"keys": 0, "name": "nosessions", "sessions": 0, "st": 142},
            )

    flavour.run(main)


# -- sessions --------------------------------------------------------------------------------


def test_sessions(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            session = await c.sh_create()
            real = unwrap(session)
            assert isinstance(real, flavour.session_type)
            assert isinstance(real, ndb_proto.Session)
            assert type(session.tkn) is int
            assert 0 < session.tkn < 2**64
            assert session.tknValid is True
            tkn = session.tkn

            assert await c.sh_set(tkn, {"fname": "James", "sname": "smith"}) is None
            assert await c.sh_get(tkn, ["fname", "sname", "nope"]) == {
                "fname": "James",
                "sname": "smith",
            }
            assert await c.sh_get(tkn, key="sname") == "smith"
            assert await c.sh_get(tkn, key="nope") is None
            with pytest.raises(ValueError, match="key"):
                await c.sh_get(tkn, ["a"], key="b")
            assert await c.sh_add(tkn, {"fname": "x", "age": 3}) is None
            assert await c.sh_get(tkn, ["fname", "age"]) == {"fname": "James", "age": 3}
            assert await c.sh_count(tkn) == 3
            assert await c.sh_contains(tkn, ["age", "x", "fname"]) == ["age", "fname"]
            assert sorted(await c.sh_keys(tkn)) == ["age", "fname", "sname"]
            assert await c.sh_rmv(tkn, ["age"]) is None
            with pytest.raises(ValueError, match="keys"):
                await c.sh_rmv(tkn, [])
            assert await c.sh_clear_set(tkn, {"q": 1}) == 2
            assert await c.sh_keys(tkn) == ["q"]
            assert await c.kv_get(key="q") is None  # sessions are apart from the KV store
            assert await c.sh_info(tkn) == {
                "expires": False,
                "keyCnt": 1,
                "shared": False,
                "tkn": tkn,
            }
            assert await c.sh_info_all() == {"totalKeys": 1, "totalSessions": 1}
            assert await c.sh_clear(tkn) == 1
            assert await c.sh_count(tkn) == 0

            other = await c.sh_create()
            assert await c.sh_session_exists([other, 12345, tkn, tkn]) == [other.tkn, tkn, tkn]
            assert await c.sh_session_exists([]) == []
            assert await c.sh_end(other) is None
            assert await c.sh_session_exists([other.tkn]) == []
            # Ending an unknown session: 100 with the token echoed.
            await response_error(
                c.sh_end(other.tkn), Status.SESSION_NOT_EXIST, {"st": 100, "tkn": other.tkn}
            )
            assert await c.sh_end_all() == 1
            assert await c.sh_end_all() == 0

    flavour.run(main)


def test_session_errors(flavour: Flavour, ndb_server: ServerThread) -> None:
    bad = {"m": "", "st": 100, "tkn": None}

    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            status = Status.SESSION_NOT_EXIST
            await response_error(c.sh_set(12345, {"a": 1}), status, bad)
            await response_error(c.sh_add(12345, {"a": 1}), status, bad)
            await response_error(c.sh_get(12345, ["a"]), status, bad)
            await response_error(c.sh_get(12345, key="a"), status, bad)
            await response_error(c.sh_rmv(12345, ["a"]), status, bad)
            await response_error(c.sh_count(12345), status, bad)
            await response_error(c.sh_contains(12345, ["a"]), status, bad)
            await response_error(c.sh_keys(2**64 - 1), status, bad)
            await response_error(c.sh_clear(12345), status, bad)
            await response_error(c.sh_clear_set(12345, {}), status, bad)
            await response_error(
                c.sh_info(12345),
                status,
                {"keyCnt": None, "shared": None, "st": 100, "tkn": 12345},
            )
            # Refused locally: not a token at all.
            with pytest.raises(TypeError, match="tkn"):
                await c.sh_count("12345")
            with pytest.raises(TypeError, match="tkn"):
                await c.sh_count(1.5)
            with pytest.raises(ValueError, match="tkn"):
                await c.sh_count(-1)
            with pytest.raises(ValueError, match="tkn"):
                await c.sh_count(2**64)
            with pytest.raises(TypeError, match="tkns"):
                await c.sh_session_exists(["x"])

    flavour.run(main)


def test_sh_create_validation(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            with pytest.raises(ValueError, match="durationSeconds"):
                await c.sh_create(0, extendOnGet=True)
            with pytest.raises(ValueError, match="durationSeconds"):
                await c.sh_create(0, True)
            with pytest.raises(ValueError, match="durationSeconds"):
                await c.sh_create(-1)
            with pytest.raises(TypeError, match="durationSeconds"):
                await c.sh_create(1.5)
            with pytest.raises(TypeError, match="durationSeconds"):
                await c.sh_create("10")
            with pytest.raises(TypeError, match="deleteSessionOnExpire"):
                await c.sh_create(10, 1)
            assert await c.sh_info_all() == {"totalKeys": 0, "totalSessions": 0}

            session = await c.sh_create(10, True, True, False)
            info = await c.sh_info(session)
            assert info["expires"] is True
            expiry = dict(info["expiry"])
            remaining = expiry.pop("remaining")
            assert type(remaining) is int
            assert 0 <= remaining <= 10
            assert expiry == {
                "deleteSession": True,
                "duration": 10,
                "extendOnGet": False,
                "extendOnSetAdd": True,
            }
            assert "st" not in info
            other = await c.sh_create(durationSeconds=20, extendOnGet=True)
            assert (await other.info())["expiry"]["extendOnGet"] is True

    flavour.run(main)


def test_session_bound_methods(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as c:
            s = await c.sh_create()
            assert await s.set({"a": 1, "b": 2}) is None
            assert await s.add({"a": 9, "c": 3}) is None
            assert await s.get(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
            assert await s.get(key="c") == 3
            assert await s.count() == 3
            assert await s.contains(["c", "z"]) == ["c"]
            assert sorted(await s.keys()) == ["a", "b", "c"]
            assert await s.rmv(["a"]) is None
            assert await s.clear_set({"q": 1}) == 2
            assert await s.info() == {"expires": False, "keyCnt": 1, "shared": False, "tkn": s.tkn}
            assert await s.clear() == 1
            assert await s.get(["q"], timeout=2.0) == {}
            assert await s.end() is None
            await response_error(s.count(), Status.SESSION_NOT_EXIST)
            # Bound to the client that made it.
            assert unwrap(s).client is unwrap(c)

    flavour.run(main)


def test_sessions_are_shared_between_clients(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url) as a, flavour.connected(ndb_server.url) as b:
            session = await a.sh_create()
            await session.set({"k": "v"})
            assert await b.sh_get(session, key="k") == "v"  # a Session stands for its token
            assert await b.sh_get(session.tkn, ["k"]) == {"k": "v"}
            await b.sh_end(session)
            assert await a.sh_session_exists([session]) == []

    flavour.run(main)


def test_per_call_timeout_argument(flavour: Flavour, ndb_server: ServerThread) -> None:
    async def main() -> None:
        async with flavour.connected(ndb_server.url, timeout=None) as c:
            assert await c.kv_count(timeout=None) == 0
            assert await c.kv_count(timeout=3) == 0
            await c.kv_set({"a": 1}, timeout=0.5)
            assert await c.kv_get(key="a", timeout=1) == 1

    flavour.run(main)
