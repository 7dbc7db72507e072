"""Replay the 45 recorded NemesisDB 0.7.4 scenarios through the client core.

For every step the client can express, the request goes through a `ClientProtocol`, a fake
server checks the text the client wrote, and answers with the RECORDED reply (``$tkn:N`` → a fixed
fake token above 2**63, ``$int`` → 7). The client must then produce the right event: a
`ReplyReceived` for the command's success statuses, a `RequestFailed` with the right
`ResponseError` for anything else (``ERR`` replies included).

Each step is replayed twice when `ndb_proto.calls` can express it: once as a raw table request
(``COMMANDS[name].request(body, identity)``, so the reply body itself is checked), and once built
by the calls function, checking the decoded result value the public API returns.

Steps that are not replayed, and why:

* ``send_text``: arbitrary text (invalid JSON, duplicate members, two commands in one object) is
  not something the client can send; every `Request` is encoded from a ``{NAME: params}`` object.
* ``send_binary``: the client never sends binary frames.
* ``send`` of a non-object (``[1, 2]``, ``5``) or of ``{}``: a `Request` always encodes an object
  with exactly one member, the command.
* ``sleep``: it lets the server's expiry sweep run; the core has no clock of its own, and the
  replies after it are replayed like any other.

``send_oversize`` steps ARE replayed: the text is exactly a KV_SET with a padded value, so the
client can build it; at the server's maxPayload it is sent and answered, one byte over it is
refused with `RequestTooLargeError` before anything is written (which is why the recorded
``$closed`` never happens to an ndb client).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ndb_proto import calls
from ndb_proto.client import ClientProtocol, State
from ndb_proto.commands import COMMANDS, Command, Request
from ndb_proto.errors import RequestTooLargeError, ResponseError
from ndb_proto.events import ReplyReceived, RequestFailed
from ndb_proto.session import Session
from ndb_proto.status import Status
from tests.proto.helpers import (
    FAKE_TOKEN_BASE,
    compact,
    open_client,
    pump,
)
from tests.vectors import (
    Bindings,
    Scenario,
    bind_new_tokens,
    matches,
    oversize_text,
    scenarios,
    server_settings,
    substitute,
)

SCENARIOS = scenarios()
FAKE_INT = 7

SUCCESS: dict[str, set[int]] = {
    "KV_SAVE": {121},
    "SH_SAVE": {121},
    "KV_LOAD": {140, 141},
    "SH_LOAD": {141},
}
"""Success statuses, written out independently of the command table (default: {1})."""


def identity(body: dict[str, Any]) -> dict[str, Any]:
    return body


def fill(template: Any, bindings: Bindings) -> Any:
    """The concrete reply for a recorded one: ``$int`` → 7, ``$tkn:N`` → its fake token."""
    if isinstance(template, str) and template == "$int":
        return FAKE_INT
    if isinstance(template, str) and template.startswith("$tkn:"):
        number = int(template[5:])
        return bindings.get(number, FAKE_TOKEN_BASE + number)
    if isinstance(template, dict):
        return {key: fill(value, bindings) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, bindings) for value in template]
    return template


# --- the calls functions that can express a recorded request ----------------------------------


def _only(body: dict[str, Any], *allowed: str) -> dict[str, Any]:
    if not set(body) <= set(allowed):
        raise KeyError(f"members {sorted(set(body) - set(allowed))} have no calls parameter")
    return body


def _sh_create(body: dict[str, Any]) -> Request[Any]:
    expiry = _only(body, "expiry").get("expiry")
    if expiry is None:
        return calls.sh_create()
    if not isinstance(expiry, dict) or "duration" not in expiry:
        raise TypeError("not an expiry the calls API can express")
    return calls.sh_create(
        expiry["duration"],
        expiry.get("deleteSession", False),
        expiry.get("extendOnSetAdd", False),
        expiry.get("extendOnGet", False),
    )


BUILDERS: dict[str, Callable[[dict[str, Any]], Request[Any]]] = {
    "KV_SET": lambda b: calls.kv_set(_only(b, "keys")["keys"]),
    "KV_ADD": lambda b: calls.kv_add(_only(b, "keys")["keys"]),
    "KV_GET": lambda b: calls.kv_get(_only(b, "keys")["keys"]),
    "KV_RMV": lambda b: calls.kv_rmv(_only(b, "keys")["keys"]),
    "KV_COUNT": lambda b: calls.kv_count(**_only(b)),
    "KV_CONTAINS": lambda b: calls.kv_contains(_only(b, "keys")["keys"]),
    "KV_KEYS": lambda b: calls.kv_keys(**_only(b)),
    "KV_CLEAR": lambda b: calls.kv_clear(**_only(b)),
    "KV_CLEAR_SET": lambda b: calls.kv_clear_set(_only(b, "keys")["keys"]),
    "KV_SAVE": lambda b: calls.kv_save(_only(b, "name")["name"]),
    "KV_LOAD": lambda b: calls.kv_load(_only(b, "name")["name"]),
    "KV_FIND": lambda b: calls.kv_find(**_only(b, "path", "rsp", "keys")),
    "KV_UPDATE": lambda b: calls.kv_update(**_only(b, "key", "path", "value")),
    "KV_ARR_APPEND": lambda b: calls.kv_arr_append(**_only(b, "key", "items", "name")),
    "SH_NEW": _sh_create,
    "SH_END": lambda b: calls.sh_end(**_only(b, "tkn")),
    "SH_END_ALL": lambda b: calls.sh_end_all(**_only(b)),
    "SH_EXISTS": lambda b: calls.sh_session_exists(**_only(b, "tkns")),
    "SH_INFO": lambda b: calls.sh_info(**_only(b, "tkn")),
    "SH_INFO_ALL": lambda b: calls.sh_info_all(**_only(b)),
    "SH_SAVE": lambda b: calls.sh_save(**_only(b, "name", "tkns")),
    "SH_LOAD": lambda b: calls.sh_load(**_only(b, "name")),
    "SH_SET": lambda b: calls.sh_set(**_only(b, "tkn", "keys")),
    "SH_ADD": lambda b: calls.sh_add(**_only(b, "tkn", "keys")),
    "SH_GET": lambda b: calls.sh_get(**_only(b, "tkn", "keys")),
    "SH_RMV": lambda b: calls.sh_rmv(**_only(b, "tkn", "keys")),
    "SH_COUNT": lambda b: calls.sh_count(**_only(b, "tkn")),
    "SH_CONTAINS": lambda b: calls.sh_contains(**_only(b, "tkn", "keys")),
    "SH_KEYS": lambda b: calls.sh_keys(**_only(b, "tkn")),
    "SH_CLEAR": lambda b: calls.sh_clear(**_only(b, "tkn")),
    "SH_CLEAR_SET": lambda b: calls.sh_clear_set(**_only(b, "tkn", "keys")),
    "SV_INFO": lambda b: calls.sv_info(**_only(b)),
}


def _normalise(name: str, params: Any) -> Any:
    """SH_NEW expiry flags default to false on the server, so spelling them out is the same
    request; everything else must match exactly."""
    if name == "SH_NEW" and isinstance(params, dict) and isinstance(params.get("expiry"), dict):
        expiry = {"deleteSession": False, "extendOnSetAdd": False, "extendOnGet": False}
        return {**params, "expiry": {**expiry, **params["expiry"]}}
    return params


def via_calls(name: str, body: Any) -> Request[Any] | None:
    """The calls request for a recorded one, when a calls function builds the same request."""
    builder = BUILDERS.get(name)
    if builder is None or not isinstance(body, dict):
        return None
    try:
        request = builder(body)
    except (KeyError, TypeError, ValueError):
        return None  # the recorded request is one the public API refuses (on purpose)
    sent = json.loads(request.payload)
    if not matches(_normalise(name, body), _normalise(name, sent[name]), Bindings(), False):
        return None
    return request


def calls_value(name: str, request_body: dict[str, Any], reply: dict[str, Any]) -> Any:
    """What the public API returns for a success reply, written out per command."""
    if name in {
        "KV_SET", "KV_ADD", "KV_RMV", "KV_SAVE", "KV_ARR_APPEND",
        "SH_END", "SH_SAVE", "SH_SET", "SH_ADD", "SH_RMV",
    }:  # fmt: skip
        return None
    if name in {
        "KV_COUNT", "KV_CLEAR", "KV_CLEAR_SET", "KV_UPDATE",
        "SH_END_ALL", "SH_COUNT", "SH_CLEAR", "SH_CLEAR_SET",
    }:  # fmt: skip
        return reply["cnt"]
    if name in {"KV_GET", "SH_GET", "KV_KEYS", "SH_KEYS", "KV_LOAD"}:
        return reply["keys"]
    if name in {"KV_CONTAINS", "SH_CONTAINS"}:
        return reply["contains"]
    if name == "SH_EXISTS":
        return reply["exist"]
    if name == "KV_FIND":
        return reply["paths"] if request_body["rsp"] == "paths" else reply["keys"]
    if name == "SH_NEW":
        return Session(reply["tkn"])
    assert name in {"SH_INFO", "SH_INFO_ALL", "SH_LOAD", "SV_INFO"}, name
    return {key: value for key, value in reply.items() if key != "st"}


# --- checking one reply -----------------------------------------------------------------------


def expect_response_error(event: Any, request_id: int, name: str, reply: dict[str, Any]) -> None:
    ((rsp_name, body),) = reply.items()
    assert rsp_name in (f"{name}_RSP", "ERR")
    assert isinstance(event, RequestFailed), event
    assert event.request_id == request_id
    error = event.error
    assert isinstance(error, ResponseError), error
    st = body["st"]
    assert error.status == st
    assert isinstance(error.status, Status)
    assert error.command == name
    assert error.rsp == body
    assert f"{Status(st).name} ({st})" in str(error)
    assert str(error).startswith(f"{name} failed: ")
    if body.get("m"):
        assert str(error).endswith(f": {body['m']}")


def is_success(name: str, reply: dict[str, Any]) -> bool:
    ((rsp_name, body),) = reply.items()
    return rsp_name == f"{name}_RSP" and body["st"] in SUCCESS.get(name, {1})


class Replay:
    """One scenario on one connection to a fake server."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.max_payload = server_settings(scenario.server)["maxPayload"]
        self.bindings = Bindings()
        self.client, self.server = open_client(max_message_size=self.max_payload)
        self.now = 0.0
        self.replayed = 0
        self.via_calls: set[str] = set()

    def written(self) -> list[str]:
        return pump(self.client, self.server).texts

    def answer(self, templates: list[dict[str, Any]]) -> bytes:
        """The recorded replies, filled in, as the bytes of one chunk; binds new tokens."""
        chunk = bytearray()
        for template in templates:
            reply = fill(template, self.bindings)
            chunk += self.server.text(compact(reply))
            bind_new_tokens(template, reply, self.bindings)
        return bytes(chunk)

    def request(self, send: dict[str, Any]) -> tuple[str, Any, Request[Any]]:
        ((name, body),) = substitute(send, self.bindings).items()
        command = COMMANDS.get(name) or Command(name)
        return name, body, command.request(body, identity)

    def check_raw(self, name: str, request_id: int, template: dict[str, Any], event: Any) -> None:
        reply = fill(template, self.bindings)
        if is_success(name, reply):
            assert isinstance(event, ReplyReceived), event
            assert event.request_id == request_id
            assert matches(template[f"{name}_RSP"], event.value, self.bindings, False)
        else:
            expect_response_error(event, request_id, name, reply)

    def step(self, send: Any, template: dict[str, Any]) -> None:
        ((name, _),) = send.items()
        name, body, request = self.request(send)
        request_id = self.client.submit(request)
        (text,) = self.written()
        assert matches({name: body}, json.loads(text), Bindings(), False), text
        self.client.receive_data(self.answer([template]), self.now)
        (event,) = self.client.events()
        self.check_raw(name, request_id, template, event)

        typed = via_calls(name, body)
        if typed is None:
            return
        self.via_calls.add(name)
        request_id = self.client.submit(typed)
        assert len(self.written()) == 1
        reply = fill(template, self.bindings)
        self.client.receive_data(self.server.text(compact(reply)), self.now)
        (event,) = self.client.events()
        if is_success(name, reply):
            assert isinstance(event, ReplyReceived), event
            assert event.request_id == request_id
            expected = calls_value(name, body, reply[f"{name}_RSP"])
            assert event.value == expected
            assert type(event.value) is type(expected)
            if isinstance(expected, Session):
                assert event.value.tkn == expected.tkn > 2**63
        else:
            expect_response_error(event, request_id, name, reply)

    def step_many(self, sends: list[Any], templates: list[dict[str, Any]], typed: bool) -> None:
        ids: list[tuple[str, int]] = []
        for send in sends:
            name, body, request = self.request(send)
            if typed:
                request = via_calls(name, body) or request
            ids.append((name, self.client.submit(request)))
        # Answered one at a time: nothing is written behind an unanswered GET (its reply's size
        # is unbounded), so the window reopens as replies are read.
        written = self.written()
        for template in templates:
            self.client.receive_data(self.answer([template]), self.now)
            written += self.written()
        assert len(written) == len(sends)
        events = self.client.events()
        assert len(events) == len(sends)
        for (name, request_id), template, event in zip(ids, templates, events, strict=True):
            assert event.request_id == request_id  # type: ignore[union-attr]
            reply = fill(template, self.bindings)
            if typed:
                assert isinstance(event, ReplyReceived) == is_success(name, reply)
            else:
                self.check_raw(name, request_id, template, event)

    def oversize(self, size: int, template: dict[str, Any]) -> None:
        text = oversize_text(size)
        request = COMMANDS["KV_SET"].request(json.loads(text)["KV_SET"], identity)
        assert request.payload == text.encode()
        if size > self.max_payload:
            assert template == {"$closed": True}
            with pytest.raises(RequestTooLargeError, match=f"{size} bytes"):
                self.client.submit(request)
            assert self.client.data_to_send() == b""
            assert self.client.state is State.OPEN and self.client.pending == 0
        else:
            self.step(json.loads(text), template)

    def run(self) -> None:
        for step in self.scenario.steps:
            send = step.get("send")
            if "send_many" in step:
                self.step_many(step["send_many"], step["recv_many"], typed=False)
                self.step_many(step["send_many"], step["recv_many"], typed=True)
            elif "send_oversize" in step:
                self.oversize(step["send_oversize"], step["recv"])
            elif isinstance(send, dict) and len(send) == 1:
                self.step(send, step["recv"])
            else:
                continue  # skipped; see the module docstring for why
            self.replayed += 1
        assert self.client.state is State.OPEN
        assert self.client.events() == []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_replays_through_the_core(scenario: Scenario) -> None:
    replay = Replay(scenario)
    replay.run()
    skipped = {
        "envelope_binary_frame": 1,
        "envelope_invalid_json": 3,
        "envelope_not_one_member": 4,
        "duplicate_members_first_wins": 1,
        "sh_expiry_delete_session": 1,
        "sh_expiry_keep_session": 1,
    }
    assert replay.replayed == len(scenario.steps) - skipped.get(scenario.name, 0)


def test_every_command_is_replayed_through_its_calls_function() -> None:
    covered: set[str] = set()
    for scenario in SCENARIOS:
        replay = Replay(scenario)
        replay.run()
        covered |= replay.via_calls
    # Every recorded KV_RMV is one the public API refuses before sending: a non-str item
    # (which the server silently skips) or an empty list (which the server rejects with 42).
    assert covered == set(COMMANDS) - {"KV_RMV"}
    assert len(COMMANDS) == 32
    with pytest.raises(TypeError, match=r"keys\[2\]"):
        calls.kv_rmv(["a", "zz", 7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="keys must not be empty"):
        calls.kv_rmv([])


def test_unknown_command_replies_are_matched_by_their_own_name() -> None:
    """SH_OPEN/SH_FIND/FOO answer ``<NAME>_RSP`` and KV_SETQ answers ``ERR``: an ad-hoc Command
    expects exactly that, so the replies are errors, not protocol violations."""
    client, server = open_client()
    for name, reply in [
        ("SH_OPEN", {"SH_OPEN_RSP": {"m": "", "st": 10, "tkn": None}}),
        ("FOO", {"FOO_RSP": {"m": "", "st": 13, "tkn": None}}),
        ("KV_SETQ", {"ERR": {"m": "", "st": 10}}),
    ]:
        request_id = client.submit(Command(name).request({}, identity))
        pump(client, server)
        client.receive_data(server.text(compact(reply)), 0.0)
        (event,) = client.events()
        expect_response_error(event, request_id, name, reply)
    assert client.state is State.OPEN


def test_big_reply_scenario_uses_16_and_64_bit_frame_lengths() -> None:
    (scenario,) = [s for s in SCENARIOS if s.name.startswith("large_replies")]
    assert server_settings(scenario.server)["maxPayload"] == 8192
    lengths = set()
    _, server = open_client(max_message_size=8192)
    for step in scenario.steps:
        data = server.text(compact(step["recv"]))
        lengths.add(data[1] & 0x7F)
    assert {126, 127} <= lengths
    # 7 KiB requests do not fit the default limit; the client refuses them up front.
    client, _ = open_client()
    big = scenario.steps[0]["send"]["KV_SET"]
    with pytest.raises(RequestTooLargeError):
        client.submit(COMMANDS["KV_SET"].request(big, identity))


def test_vector_helpers_behave() -> None:
    bindings = Bindings()
    assert fill({"a": ["$int", "$tkn:3"]}, bindings) == {"a": [7, FAKE_TOKEN_BASE + 3]}
    template = {"SH_NEW_RSP": {"st": 1, "tkn": "$tkn:3"}}
    bind_new_tokens(template, fill(template, bindings), bindings)
    assert bindings == {3: FAKE_TOKEN_BASE + 3}
    assert via_calls("KV_SET", {"keys": {"a": 1}, "extra": 5}) is None
    assert via_calls("KV_SET", {"keys": [1]}) is None
    assert via_calls("KV_SET", 5) is None
    assert via_calls("NOPE", {}) is None
    assert via_calls("SH_NEW", {"expiry": 5}) is None
    assert via_calls("SH_NEW", {"expiry": {"duration": 9, "deleteSession": True}}) is not None
    assert via_calls("SV_INFO", {"ignored": 1}) is None


def test_replay_client_options_follow_the_server_settings() -> None:
    persist = Replay(next(s for s in SCENARIOS if s.server == "persist"))
    default = Replay(next(s for s in SCENARIOS if s.server == "default"))
    assert persist.client.max_message_size == 8192
    assert default.client.max_message_size == 1024
    assert isinstance(default.client, ClientProtocol)
