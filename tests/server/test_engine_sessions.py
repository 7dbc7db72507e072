"""Session tokens and the expiry model (docs/protocol.md §9), driven by a fake clock."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from ndb_server import Engine


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _call(engine: Engine, request: object) -> Any:
    return json.loads(engine.handle_text(json.dumps(request, separators=(",", ":"))))


def _new(engine: Engine, **expiry: object) -> int:
    body = {"expiry": expiry} if expiry else {}
    rsp = _call(engine, {"SH_NEW": body})["SH_NEW_RSP"]
    assert rsp["st"] == 1
    token: int = rsp["tkn"]
    return token


def _info(engine: Engine, token: int) -> Any:
    return _call(engine, {"SH_INFO": {"tkn": token}})["SH_INFO_RSP"]


def _remaining(engine: Engine, token: int) -> int:
    remaining: int = _info(engine, token)["expiry"]["remaining"]
    return remaining


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def engine(clock: _Clock) -> Engine:
    tokens = itertools.count(2**63 + 11, 7919)
    return Engine(clock=clock, token_source=lambda: next(tokens))


def test_tokens_come_from_the_token_source_masked_to_u64(clock: _Clock) -> None:
    engine = Engine(clock=clock, token_source=lambda: 2**64 + 5)
    assert _call(engine, {"SH_NEW": {}}) == {"SH_NEW_RSP": {"st": 1, "tkn": 5}}


def test_a_colliding_token_is_retried() -> None:
    draws = iter([42, 42, 42, 43])
    engine = Engine(clock=_Clock(), token_source=lambda: next(draws))
    assert _new(engine) == 42
    assert _new(engine) == 43


def test_a_token_that_keeps_colliding_gives_103() -> None:
    engine = Engine(clock=_Clock(), token_source=lambda: 42)
    assert _new(engine) == 42
    assert _call(engine, {"SH_NEW": {}}) == {"SH_NEW_RSP": {"st": 103, "tkn": 42}}
    assert _call(engine, {"SH_INFO_ALL": {}})["SH_INFO_ALL_RSP"]["totalSessions"] == 1


def test_info_remaining_truncates_towards_zero_and_goes_negative(
    engine: Engine, clock: _Clock
) -> None:
    token = _new(engine, duration=10)
    clock.now += 7.3
    assert _remaining(engine, token) == 2
    clock.now += 4.4  # 1.7 s past the expire time, no sweep yet
    assert _remaining(engine, token) == -1
    info = _info(engine, token)
    assert info == {
        "expires": True,
        "expiry": {
            "deleteSession": False,
            "duration": 10,
            "extendOnGet": False,
            "extendOnSetAdd": False,
            "remaining": -1,
        },
        "keyCnt": 0,
        "shared": False,
        "st": 1,
        "tkn": token,
    }


def test_sweep_deletes_only_sessions_that_are_past_their_time(
    engine: Engine, clock: _Clock
) -> None:
    short = _new(engine, duration=3, deleteSession=True)
    long = _new(engine, duration=30, deleteSession=True)
    never = _new(engine)
    clock.now += 3.0
    engine.sweep_expired()  # expire time == now is not "earlier than now"
    assert _call(engine, {"SH_EXISTS": {"tkns": [short, long, never]}}) == {
        "SH_EXISTS_RSP": {"exist": [short, long, never], "st": 1}
    }
    clock.now += 0.001
    engine.sweep_expired()
    assert _call(engine, {"SH_EXISTS": {"tkns": [short, long, never]}}) == {
        "SH_EXISTS_RSP": {"exist": [long, never], "st": 1}
    }
    assert _call(engine, {"SH_COUNT": {"tkn": short}}) == {
        "SH_COUNT_RSP": {"m": "", "st": 100, "tkn": None}
    }


def test_sweep_without_delete_wipes_keys_and_starts_a_new_period(
    engine: Engine, clock: _Clock
) -> None:
    token = _new(engine, duration=3)
    _call(engine, {"SH_SET": {"tkn": token, "keys": {"a": 1}}})
    clock.now += 5.0
    engine.sweep_expired()
    assert _info(engine, token)["keyCnt"] == 0
    assert _remaining(engine, token) == 3  # new period from the sweep time
    _call(engine, {"SH_SET": {"tkn": token, "keys": {"b": 2}}})
    clock.now += 2.5
    engine.sweep_expired()
    assert _info(engine, token)["keyCnt"] == 1


@pytest.mark.parametrize(
    ("flags", "command"),
    [
        ({"extendOnSetAdd": True}, {"SH_SET": {"keys": {"a": 1}}}),
        ({"extendOnSetAdd": True}, {"SH_ADD": {"keys": {"a": 1}}}),
        ({"extendOnGet": True}, {"SH_GET": {"keys": []}}),
    ],
)
def test_extension_restarts_the_period_from_now(
    engine: Engine, clock: _Clock, flags: dict[str, bool], command: dict[str, Any]
) -> None:
    token = _new(engine, duration=10, deleteSession=True, **flags)
    clock.now += 12.0  # overdue, but the monitor has not run: the command rescues it
    assert _remaining(engine, token) == -2
    ((name, body),) = command.items()
    assert _call(engine, {name: {**body, "tkn": token}})[f"{name}_RSP"]["st"] == 1
    assert _remaining(engine, token) == 10
    engine.sweep_expired()
    assert _info(engine, token)["st"] == 1


@pytest.mark.parametrize(
    "command",
    [
        {"SH_SET": {"keys": {"a": 1}}},
        {"SH_ADD": {"keys": {"a": 1}}},
        {"SH_GET": {"keys": ["a"]}},
        {"SH_CLEAR_SET": {"keys": {"a": 1}}},
        {"SH_RMV": {"keys": ["a"]}},
        {"SH_CONTAINS": {"keys": ["a"]}},
        {"SH_KEYS": {}},
        {"SH_COUNT": {}},
        {"SH_CLEAR": {}},
        {"SH_INFO": {}},
        {"SH_EXISTS": {"tkns": []}},
    ],
)
def test_commands_that_do_not_extend(
    engine: Engine, clock: _Clock, command: dict[str, Any]
) -> None:
    token = _new(engine, duration=10)  # no extension flags at all
    flagged = _new(engine, duration=10, extendOnGet=False, extendOnSetAdd=False)
    clock.now += 4.0
    ((name, body),) = command.items()
    for tkn in (token, flagged):
        request = {name: {**body, "tkn": tkn}} if name != "SH_EXISTS" else command
        _call(engine, request)
        assert _remaining(engine, tkn) == 6


def test_get_does_not_extend_a_set_add_session_and_vice_versa(
    engine: Engine, clock: _Clock
) -> None:
    on_set = _new(engine, duration=10, extendOnSetAdd=True)
    on_get = _new(engine, duration=10, extendOnGet=True)
    clock.now += 4.0
    _call(engine, {"SH_GET": {"tkn": on_set, "keys": []}})
    _call(engine, {"SH_SET": {"tkn": on_get, "keys": {}}})
    assert (_remaining(engine, on_set), _remaining(engine, on_get)) == (6, 6)


def test_failed_validation_does_not_extend(engine: Engine, clock: _Clock) -> None:
    token = _new(engine, duration=10, extendOnSetAdd=True, extendOnGet=True)
    clock.now += 4.0
    assert _call(engine, {"SH_SET": {"tkn": token, "keys": 5}})["SH_SET_RSP"]["st"] == 41
    assert _call(engine, {"SH_GET": {"tkn": token}})["SH_GET_RSP"]["st"] == 26
    assert _remaining(engine, token) == 6


def test_duration_zero_never_expires_whatever_the_flags(engine: Engine, clock: _Clock) -> None:
    token = _new(engine, duration=0, deleteSession=True, extendOnGet=True)
    _call(engine, {"SH_SET": {"tkn": token, "keys": {"a": 1}}})
    clock.now += 1e6
    engine.sweep_expired()
    assert _info(engine, token) == {
        "expires": False,
        "keyCnt": 1,
        "shared": False,
        "st": 1,
        "tkn": token,
    }


@pytest.mark.parametrize("duration", [10**10, 2**63, 2**64 - 1])
def test_huge_durations_are_clamped_instead_of_overflowing(
    engine: Engine, clock: _Clock, duration: int
) -> None:
    """Deviation 3: the real server wraps around and expires these at the next sweep."""
    token = _new(engine, duration=duration, deleteSession=True)
    clock.now += 10.0
    engine.sweep_expired()
    expiry = _info(engine, token)["expiry"]
    assert expiry["duration"] == duration
    assert expiry["remaining"] == 9_223_372_036 - 10


def test_end_info_and_end_all(engine: Engine) -> None:
    first, second = _new(engine), _new(engine, duration=60)
    _call(engine, {"SH_SET": {"tkn": first, "keys": {"a": 1, "b": 2}}})
    _call(engine, {"SH_SET": {"tkn": second, "keys": {"c": 3}}})
    assert _call(engine, {"SH_INFO_ALL": {}}) == {
        "SH_INFO_ALL_RSP": {"st": 1, "totalKeys": 3, "totalSessions": 2}
    }
    assert _call(engine, {"SH_END": {"tkn": first}}) == {"SH_END_RSP": {"st": 1, "tkn": first}}
    assert _call(engine, {"SH_END": {"tkn": first}}) == {"SH_END_RSP": {"st": 100, "tkn": first}}
    assert _call(engine, {"SH_END_ALL": {}}) == {"SH_END_ALL_RSP": {"cnt": 1, "st": 1}}
    assert _call(engine, {"SH_INFO_ALL": {}}) == {
        "SH_INFO_ALL_RSP": {"st": 1, "totalKeys": 0, "totalSessions": 0}
    }


def test_session_data_is_separate_from_the_kv_store(engine: Engine) -> None:
    token = _new(engine)
    _call(engine, {"KV_SET": {"keys": {"a": "kv"}}})
    _call(engine, {"SH_SET": {"tkn": token, "keys": {"a": "sh"}}})
    assert _call(engine, {"SH_GET": {"tkn": token, "keys": ["a"]}}) == {
        "SH_GET_RSP": {"keys": {"a": "sh"}, "st": 1}
    }
    assert _call(engine, {"KV_COUNT": {}}) == {"KV_COUNT_RSP": {"cnt": 1, "st": 1}}
    assert _call(engine, {"SH_KEYS": {"tkn": token}}) == {"SH_KEYS_RSP": {"keys": ["a"], "st": 1}}
