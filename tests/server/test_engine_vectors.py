"""Replay every recorded NemesisDB 0.7.4 scenario against a fresh ``Engine``.

Each step's request is fed to ``handle_text``/``handle_binary`` and the reply must equal the
recorded one: parsed JSON compared exactly (int/float/bool kept apart), arrays as multisets where
the scenario says ``unordered_arrays``, ``"$int"`` matching any integer and ``"$tkn:N"`` binding
session tokens. The reply text itself must be compact with sorted members and raw non-ASCII.
``sleep`` steps advance a fake clock and run the expiry sweep at the server's 5-second cadence;
oversize frames larger than the scenario's ``maxPayload`` are the network layer's job and skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ndb_server import Engine
from tests.vectors import load

_VECTORS = load()
_SCENARIOS: list[dict[str, Any]] = _VECTORS["scenarios"]
_SWEEP_PERIOD = 5.0


@dataclass
class _FakeClock:
    """Monotonic time that only moves when told to; starts where a server would have started."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class _Replay:
    engine: Engine
    clock: _FakeClock
    max_payload: int
    unordered: bool
    tokens: dict[int, int] = field(default_factory=dict)
    next_sweep: float = 0.0

    def substitute(self, value: Any) -> Any:
        """Replace ``"$tkn:N"`` in a request with the bound token."""
        if isinstance(value, str) and value.startswith("$tkn:"):
            return self.tokens[int(value[5:])]
        if isinstance(value, dict):
            return {key: self.substitute(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.substitute(item) for item in value]
        return value

    def send_object(self, request: Any) -> str:
        text = json.dumps(self.substitute(request), separators=(",", ":"), ensure_ascii=False)
        return self.engine.handle_text(text)

    def sleep(self, seconds: float) -> None:
        target = self.clock.now + seconds
        while self.next_sweep <= target:
            self.clock.now = self.next_sweep
            self.engine.sweep_expired()
            self.next_sweep += _SWEEP_PERIOD
        self.clock.now = target

    def check(self, expected: Any, reply_text: str) -> None:
        actual = json.loads(reply_text)
        canonical = json.dumps(actual, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        assert reply_text == canonical, "reply is not compact, sorted, raw-UTF-8 JSON"
        assert self.matches(expected, actual), f"expected {expected!r}\n     got {actual!r}"

    def matches(self, expected: Any, actual: Any) -> bool:
        if isinstance(expected, str) and expected == "$int":
            return type(actual) is int
        if isinstance(expected, str) and expected.startswith("$tkn:"):
            number = int(expected[5:])
            if type(actual) is not int:
                return False
            return self.tokens.setdefault(number, actual) == actual
        if isinstance(expected, dict):
            return (
                isinstance(actual, dict)
                and expected.keys() == actual.keys()
                and all(self.matches(item, actual[key]) for key, item in expected.items())
            )
        if isinstance(expected, list):
            if not isinstance(actual, list) or len(expected) != len(actual):
                return False
            if not self.unordered:
                return all(self.matches(e, a) for e, a in zip(expected, actual, strict=True))
            remaining = list(actual)
            for item in expected:
                index = next((i for i, a in enumerate(remaining) if self.matches(item, a)), None)
                if index is None:
                    return False
                remaining.pop(index)
            return True
        return type(expected) is type(actual) and expected == actual


def _oversize_text(size: int) -> str:
    head, tail = '{"KV_SET":{"keys":{"k":"', '"}}}'
    return head + "x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("scenario", _SCENARIOS, ids=[s["name"] for s in _SCENARIOS])
def test_scenario(scenario: dict[str, Any], tmp_path: Path) -> None:
    settings = _VECTORS["servers"][scenario["server"]]
    clock = _FakeClock()
    engine = Engine(clock=clock, persist_dir=tmp_path if settings["persist"] else None)
    replay = _Replay(engine, clock, settings["maxPayload"], scenario["unordered_arrays"])
    replay.next_sweep = clock.now + _SWEEP_PERIOD
    for step in scenario["steps"]:
        if "send" in step:
            replay.check(step["recv"], replay.send_object(step["send"]))
        elif "send_text" in step:
            replay.check(step["recv"], engine.handle_text(step["send_text"]))
        elif "send_binary" in step:
            replay.check(step["recv"], engine.handle_binary(bytes.fromhex(step["send_binary"])))
        elif "send_many" in step:
            replies = [replay.send_object(request) for request in step["send_many"]]
            assert len(replies) == len(step["recv_many"])
            for expected, reply_text in zip(step["recv_many"], replies, strict=True):
                replay.check(expected, reply_text)
        elif "send_oversize" in step:
            size = step["send_oversize"]
            if size > replay.max_payload:
                assert step["recv"] == {"$closed": True}
                continue
            text = _oversize_text(size)
            assert len(text.encode()) == size
            replay.check(step["recv"], engine.handle_text(text))
        elif "sleep" in step:
            replay.sleep(step["sleep"])
        else:
            pytest.fail(f"unknown step {step!r}")


def test_every_scenario_is_replayed() -> None:
    assert len(_SCENARIOS) == 45
