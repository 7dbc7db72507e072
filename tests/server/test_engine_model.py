"""Random KV and SH command sequences, checked reply by reply against a plain-dict model.

The model follows docs/protocol.md, independently of the engine's code: the KV store and each
session are dicts, values are normalised the way jsoncons stores them (integers outside
i64/u64 become strings), and session expiry follows §9.2 with the sweep run every 5 s of fake
time.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from ndb_server import Engine

_U64_MAX = 2**64 - 1
_I64_MIN = -(2**63)
_PERIOD_CLAMP = 9_223_372_036
_SWEEP_EVERY = 5.0


def _stored(value: Any) -> Any:
    """What the server keeps for ``value`` once it went through JSON."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _U64_MAX else str(value)
    if isinstance(value, list):
        return [_stored(item) for item in value]
    return {key: _stored(item) for key, item in value.items()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


_names = st.sampled_from(["a", "b", "c", "é", "", 'q"', "\\", "😀", "/"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)
_key_objects = st.dictionaries(_names, _values, max_size=4)
_name_lists = st.lists(_names | st.integers(0, 3) | st.none(), max_size=5)
_expiries = st.none() | st.fixed_dictionaries(
    {"duration": st.integers(1, 15) | st.sampled_from([0, _U64_MAX])},
    optional={
        "deleteSession": st.booleans(),
        "extendOnGet": st.booleans(),
        "extendOnSetAdd": st.booleans(),
    },
)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class _Session:
    duration: int
    delete: bool
    on_get: bool
    on_set_add: bool
    expires_at: float | None
    data: dict[str, Any] = field(default_factory=dict)

    def restart(self, now: float) -> None:
        if self.duration > 0:
            self.expires_at = now + min(self.duration, _PERIOD_CLAMP)


class EngineVersusModel(RuleBasedStateMachine):
    tokens = Bundle("tokens")

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock()
        self.next_sweep = self.clock.now + _SWEEP_EVERY
        draws = itertools.count(2**63 - 3 * 104_729, 104_729)  # crosses 2**63
        self.engine = Engine(clock=self.clock, token_source=lambda: next(draws))
        self.kv: dict[str, Any] = {}
        self.sessions: dict[int, _Session] = {}

    # -- plumbing -------------------------------------------------------------------------

    def send(self, request: Any) -> Any:
        text = json.dumps(request, ensure_ascii=False, separators=(",", ":"))
        return json.loads(self.engine.handle_text(text))

    def expect(self, request: Any, expected: Any) -> Any:
        actual = self.send(request)
        assert _canonical(actual) == _canonical(expected), (request, actual, expected)
        return actual

    def session_command(
        self, name: str, token: int, body: dict[str, Any], extend: bool, members: Any
    ) -> None:
        """Run ``SH_<name>``; ``members(data)`` gives the success members besides ``st``."""
        session = self.sessions.get(token)
        rsp = f"SH_{name}_RSP"
        if session is None:
            self.expect(
                {f"SH_{name}": {**body, "tkn": token}}, {rsp: {"m": "", "st": 100, "tkn": None}}
            )
            return
        if extend:
            session.restart(self.clock.now)
        expected = {rsp: {"st": 1, **members(session.data)}}
        self.expect({f"SH_{name}": {**body, "tkn": token}}, expected)

    # -- KV -------------------------------------------------------------------------------

    @rule(keys=_key_objects)
    def kv_set(self, keys: dict[str, Any]) -> None:
        self.kv.update(_stored(keys))
        self.expect({"KV_SET": {"keys": keys}}, {"KV_SET_RSP": {"st": 1}})

    @rule(keys=_key_objects)
    def kv_add(self, keys: dict[str, Any]) -> None:
        for name, value in _stored(keys).items():
            self.kv.setdefault(name, value)
        self.expect({"KV_ADD": {"keys": keys}}, {"KV_ADD_RSP": {"st": 1}})

    @rule(names=_name_lists)
    def kv_get(self, names: list[Any]) -> None:
        found = {n: self.kv[n] for n in names if isinstance(n, str) and n in self.kv}
        self.expect({"KV_GET": {"keys": names}}, {"KV_GET_RSP": {"keys": found, "st": 1}})

    @rule(names=_name_lists)
    def kv_rmv(self, names: list[Any]) -> None:
        if not names:
            expected: Any = {"KV_RMV_RSP": {"m": "keys", "st": 42, "tkn": None}}
        else:
            for name in names:
                if isinstance(name, str):
                    self.kv.pop(name, None)
            expected = {"KV_RMV_RSP": {"st": 1}}
        self.expect({"KV_RMV": {"keys": names}}, expected)

    @rule()
    def kv_clear(self) -> None:
        count, self.kv = len(self.kv), {}
        self.expect({"KV_CLEAR": {}}, {"KV_CLEAR_RSP": {"cnt": count, "st": 1}})

    @rule(names=_name_lists)
    def kv_contains(self, names: list[Any]) -> None:
        found = [n for n in names if isinstance(n, str) and n in self.kv]
        self.expect(
            {"KV_CONTAINS": {"keys": names}}, {"KV_CONTAINS_RSP": {"contains": found, "st": 1}}
        )

    @rule()
    def kv_keys(self) -> None:
        rsp = self.send({"KV_KEYS": {}})["KV_KEYS_RSP"]
        assert rsp["st"] == 1
        assert sorted(rsp["keys"]) == sorted(self.kv)

    @rule(keys=_key_objects)
    def kv_clear_set(self, keys: dict[str, Any]) -> None:
        count, self.kv = len(self.kv), _stored(keys)
        self.expect({"KV_CLEAR_SET": {"keys": keys}}, {"KV_CLEAR_SET_RSP": {"cnt": count, "st": 1}})

    # -- sessions -------------------------------------------------------------------------

    @rule(target=tokens, expiry=_expiries)
    def sh_new(self, expiry: dict[str, Any] | None) -> int:
        reply = self.send({"SH_NEW": {} if expiry is None else {"expiry": expiry}})["SH_NEW_RSP"]
        assert reply["st"] == 1
        token: int = reply["tkn"]
        assert token not in self.sessions
        settings_ = expiry or {"duration": 0}
        session = _Session(
            duration=settings_["duration"],
            delete=settings_.get("deleteSession", False),
            on_get=settings_.get("extendOnGet", False),
            on_set_add=settings_.get("extendOnSetAdd", False),
            expires_at=None,
        )
        session.restart(self.clock.now)
        self.sessions[token] = session
        return token

    @rule(
        token=st.integers(0, 5),
        name=st.sampled_from(["SET", "ADD", "GET", "CONTAINS", "CLEAR_SET", "COUNT", "KEYS"]),
    )
    def sh_unknown_token(self, token: int, name: str) -> None:
        body: dict[str, Any] = {"tkn": token}
        if name in ("SET", "ADD", "CLEAR_SET"):
            body["keys"] = {"a": 1}
        elif name in ("GET", "CONTAINS"):
            body["keys"] = ["a"]
        self.expect({f"SH_{name}": body}, {f"SH_{name}_RSP": {"m": "", "st": 100, "tkn": None}})

    @rule(token=tokens, keys=_key_objects)
    def sh_set(self, token: int, keys: dict[str, Any]) -> None:
        session = self.sessions.get(token)
        extend = session is not None and session.on_set_add

        def run(data: dict[str, Any]) -> dict[str, Any]:
            data.update(_stored(keys))
            return {}

        self.session_command("SET", token, {"keys": keys}, extend, run)

    @rule(token=tokens, keys=_key_objects)
    def sh_add(self, token: int, keys: dict[str, Any]) -> None:
        session = self.sessions.get(token)
        extend = session is not None and session.on_set_add

        def run(data: dict[str, Any]) -> dict[str, Any]:
            for name, value in _stored(keys).items():
                data.setdefault(name, value)
            return {}

        self.session_command("ADD", token, {"keys": keys}, extend, run)

    @rule(token=tokens, names=_name_lists)
    def sh_get(self, token: int, names: list[Any]) -> None:
        session = self.sessions.get(token)
        extend = session is not None and session.on_get

        def run(data: dict[str, Any]) -> dict[str, Any]:
            return {"keys": {n: data[n] for n in names if isinstance(n, str) and n in data}}

        self.session_command("GET", token, {"keys": names}, extend, run)

    @rule(token=tokens, names=_name_lists)
    def sh_rmv(self, token: int, names: list[Any]) -> None:
        if not names:  # validated before the token is looked up
            expected = {"SH_RMV_RSP": {"m": "keys", "st": 42, "tkn": None}}
            self.expect({"SH_RMV": {"tkn": token, "keys": names}}, expected)
            return

        def run(data: dict[str, Any]) -> dict[str, Any]:
            for name in names:
                if isinstance(name, str):
                    data.pop(name, None)
            return {}

        self.session_command("RMV", token, {"keys": names}, False, run)

    @rule(token=tokens, names=_name_lists)
    def sh_contains(self, token: int, names: list[Any]) -> None:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            return {"contains": [n for n in names if isinstance(n, str) and n in data]}

        self.session_command("CONTAINS", token, {"keys": names}, False, run)

    @rule(token=tokens)
    def sh_count(self, token: int) -> None:
        self.session_command("COUNT", token, {}, False, lambda data: {"cnt": len(data)})

    @rule(token=tokens)
    def sh_clear(self, token: int) -> None:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            count = len(data)
            data.clear()
            return {"cnt": count}

        self.session_command("CLEAR", token, {}, False, run)

    @rule(token=tokens, keys=_key_objects)
    def sh_clear_set(self, token: int, keys: dict[str, Any]) -> None:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            count = len(data)
            data.clear()
            data.update(_stored(keys))
            return {"cnt": count}

        self.session_command("CLEAR_SET", token, {"keys": keys}, False, run)

    @rule(token=tokens)
    def sh_keys(self, token: int) -> None:
        session = self.sessions.get(token)
        reply = self.send({"SH_KEYS": {"tkn": token}})["SH_KEYS_RSP"]
        if session is None:
            assert reply == {"m": "", "st": 100, "tkn": None}
        else:
            assert reply["st"] == 1
            assert sorted(reply["keys"]) == sorted(session.data)

    @rule(token=tokens)
    def sh_info(self, token: int) -> None:
        self.check_info(token)

    def check_info(self, token: int) -> None:
        session = self.sessions.get(token)
        if session is None:
            expected: Any = {"keyCnt": None, "shared": None, "st": 100, "tkn": token}
        else:
            expected = {
                "expires": session.duration > 0,
                "keyCnt": len(session.data),
                "shared": False,
                "st": 1,
                "tkn": token,
            }
            if session.expires_at is not None:
                expected["expiry"] = {
                    "deleteSession": session.delete,
                    "duration": session.duration,
                    "extendOnGet": session.on_get,
                    "extendOnSetAdd": session.on_set_add,
                    "remaining": int(session.expires_at - self.clock.now),
                }
        self.expect({"SH_INFO": {"tkn": token}}, {"SH_INFO_RSP": expected})

    @rule(token=tokens)
    def sh_end(self, token: int) -> None:
        status = 1 if self.sessions.pop(token, None) is not None else 100
        self.expect({"SH_END": {"tkn": token}}, {"SH_END_RSP": {"st": status, "tkn": token}})

    @rule(listed=st.lists(tokens | st.integers(0, 5) | st.text(max_size=1), max_size=4))
    def sh_exists(self, listed: list[Any]) -> None:
        exist = [t for t in listed if isinstance(t, int) and t in self.sessions]
        self.expect({"SH_EXISTS": {"tkns": listed}}, {"SH_EXISTS_RSP": {"exist": exist, "st": 1}})

    @precondition(lambda self: len(self.sessions) > 4)
    @rule()
    def sh_end_all(self) -> None:
        count, self.sessions = len(self.sessions), {}
        self.expect({"SH_END_ALL": {}}, {"SH_END_ALL_RSP": {"cnt": count, "st": 1}})

    # -- time -----------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 4.0, 5.0, 7.25, 12.0]))
    def advance(self, seconds: float) -> None:
        target = self.clock.now + seconds
        while self.next_sweep <= target:
            self.clock.now = self.next_sweep
            self.engine.sweep_expired()
            self.model_sweep()
            self.next_sweep += _SWEEP_EVERY
        self.clock.now = target

    def model_sweep(self) -> None:
        now = self.clock.now
        for token, session in list(self.sessions.items()):
            if session.expires_at is None or not session.expires_at < now:
                continue
            if session.delete:
                del self.sessions[token]
            else:
                session.data.clear()
                session.restart(now)

    @invariant()
    def every_session_agrees(self) -> None:
        """Key count and expiry state of every live session, after every step."""
        for token in list(self.sessions):
            self.check_info(token)

    @invariant()
    def totals_agree(self) -> None:
        self.expect({"KV_COUNT": {}}, {"KV_COUNT_RSP": {"cnt": len(self.kv), "st": 1}})
        total_keys = sum(len(session.data) for session in self.sessions.values())
        self.expect(
            {"SH_INFO_ALL": {}},
            {
                "SH_INFO_ALL_RSP": {
                    "st": 1,
                    "totalKeys": total_keys,
                    "totalSessions": len(self.sessions),
                }
            },
        )


EngineVersusModel.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineVersusModel = EngineVersusModel.TestCase
