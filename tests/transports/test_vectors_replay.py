"""The recorded NemesisDB 0.7.4 vectors, replayed through the client API against the embedded
server: each request the API can express is made with the matching method, and its recorded
reply must come back as the method's result, or as a ResponseError whose ``status`` and ``rsp``
are the recorded ones. Requests the API refuses locally (TypeError/ValueError) must be ones
the server refused too. Requests the API cannot express at all (raw text, binary frames, unknown
commands, missing parameters) are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ndb_proto.commands import COMMANDS
from ndb_proto.errors import RequestTooLargeError, ResponseError
from ndb_proto.session import Session
from tests import vectors
from tests.transports.flavours import Flavour, unwrap

SCENARIOS = vectors.scenarios()
SLOW = {s.name for s in SCENARIOS if any("sleep" in step for step in s.steps)}
"""Session expiry scenarios wait 6.5 s for the server's sweep: too slow for this suite (the
server tests replay them on the wire)."""

NOT_EXPRESSIBLE = object()

_NO_PARAMS = {
    "KV_COUNT": "kv_count",
    "KV_KEYS": "kv_keys",
    "KV_CLEAR": "kv_clear",
    "SV_INFO": "sv_info",
    "SH_END_ALL": "sh_end_all",
    "SH_INFO_ALL": "sh_info_all",
}
_KEYS_OBJECT = {"KV_SET": "kv_set", "KV_ADD": "kv_add", "KV_CLEAR_SET": "kv_clear_set"}
_KEY_LIST = {"KV_GET": "kv_get", "KV_RMV": "kv_rmv", "KV_CONTAINS": "kv_contains"}
_NAME = {"KV_SAVE": "kv_save", "KV_LOAD": "kv_load", "SH_LOAD": "sh_load"}
_TOKEN = {"SH_END": "sh_end", "SH_COUNT": "sh_count", "SH_KEYS": "sh_keys", "SH_CLEAR": "sh_clear"}
_TOKEN_KEYS_OBJECT = {"SH_SET": "sh_set", "SH_ADD": "sh_add", "SH_CLEAR_SET": "sh_clear_set"}
_TOKEN_KEY_LIST = {"SH_GET": "sh_get", "SH_RMV": "sh_rmv", "SH_CONTAINS": "sh_contains"}


def _strings(items: list[Any]) -> list[str]:
    # The server ignores items that are not strings in these lists (docs/protocol.md §12 item 8).
    return [item for item in items if isinstance(item, str)]


def _out_of_range(value: Any) -> bool:
    """An integer the API refuses on purpose: the server would turn it into a string."""
    if isinstance(value, dict):
        return any(_out_of_range(v) for v in value.values())
    if isinstance(value, list):
        return any(_out_of_range(v) for v in value)
    return type(value) is int and not -(2**63) <= value <= 2**64 - 1


def to_call(request: Any) -> tuple[str, tuple[Any, ...]] | object:
    """The API method and arguments that send ``request``, or NOT_EXPRESSIBLE."""
    if not isinstance(request, dict) or len(request) != 1:
        return NOT_EXPRESSIBLE
    ((command, params),) = request.items()
    if command not in COMMANDS or not isinstance(params, dict):
        return NOT_EXPRESSIBLE
    if _out_of_range({k: v for k, v in params.items() if k not in ("tkn", "tkns")}):
        return NOT_EXPRESSIBLE
    if command in _NO_PARAMS:
        return _NO_PARAMS[command], ()
    if command in _KEYS_OBJECT and "keys" in params:
        return _KEYS_OBJECT[command], (params["keys"],)
    if command in _KEY_LIST and isinstance(params.get("keys"), list):
        return _KEY_LIST[command], (_strings(params["keys"]),)
    if command in _NAME and "name" in params:
        return _NAME[command], (params["name"],)
    if command in _TOKEN and "tkn" in params:
        return _TOKEN[command], (params["tkn"],)
    if command == "SH_INFO" and set(params) == {"tkn"}:  # SH_INFO checks its member count
        return "sh_info", (params["tkn"],)
    if command in _TOKEN_KEYS_OBJECT and "tkn" in params and "keys" in params:
        return _TOKEN_KEYS_OBJECT[command], (params["tkn"], params["keys"])
    if command in _TOKEN_KEY_LIST and "tkn" in params and isinstance(params.get("keys"), list):
        return _TOKEN_KEY_LIST[command], (params["tkn"], _strings(params["keys"]))
    if command == "SH_EXISTS" and "tkns" in params:
        tkns = params["tkns"]
        if isinstance(tkns, list):  # the server skips items that are not tokens
            tkns = [t for t in tkns if type(t) is int and 0 <= t < 2**64]
        return "sh_session_exists", (tkns,)
    if command == "SH_SAVE" and "name" in params:
        tkns = params.get("tkns", ())
        if tkns == []:
            return NOT_EXPRESSIBLE  # the API's empty tkns means "every session"
        return "sh_save", (params["name"], tkns)
    if command == "SH_NEW":
        if "expiry" not in params:
            return "sh_create", ()
        expiry = params["expiry"]
        if not isinstance(expiry, dict) or "duration" not in expiry:
            return NOT_EXPRESSIBLE
        flags = [expiry.get(f, False) for f in ("deleteSession", "extendOnSetAdd", "extendOnGet")]
        if expiry["duration"] == 0 and any(flags):
            # Refused by the API on purpose (as by NemesisDB's Python client): the flags would
            # have no effect. The server accepts it.
            return NOT_EXPRESSIBLE
        return "sh_create", (expiry["duration"], *flags)
    if command == "KV_FIND" and {"path", "rsp"} <= set(params):
        keys = params.get("keys")
        if keys is not None and not all(isinstance(k, str) for k in keys):
            return NOT_EXPRESSIBLE  # KV_FIND looks non-strings up by their JSON text
        return "kv_find", (params["path"], params["rsp"], keys)
    if command == "KV_UPDATE" and {"key", "path", "value"} <= set(params):
        return "kv_update", (params["key"], params["path"], params["value"])
    if command == "KV_ARR_APPEND" and {"key", "items"} <= set(params):
        return "kv_arr_append", (params["key"], params["items"], params.get("name"))
    return NOT_EXPRESSIBLE


def expected_result(command: str, body: dict[str, Any], request: dict[str, Any]) -> Any:
    """What the API method returns for a successful reply ``body``."""
    if command in {"KV_GET", "SH_GET", "KV_KEYS", "SH_KEYS"}:
        return body["keys"]
    if command in {"KV_CONTAINS", "SH_CONTAINS"}:
        return body["contains"]
    if command == "SH_EXISTS":
        return body["exist"]
    if command == "KV_FIND":
        return body["paths"] if request["rsp"] == "paths" else body["keys"]
    if command == "KV_LOAD":
        return body["keys"]
    if command in {"SH_INFO", "SH_INFO_ALL", "SH_LOAD", "SV_INFO"}:
        return {k: v for k, v in body.items() if k != "st"}
    if "cnt" in body:
        return body["cnt"]
    return None


class Replay:
    def __init__(self, client: Any, scenario: vectors.Scenario) -> None:
        self.client = client
        self.scenario = scenario
        self.bindings = vectors.Bindings()
        self.replayed = 0
        self.refused_locally = 0
        self.diverged = False
        """A step that changed the server's state was skipped: later replies may differ."""

    def skip(self, recv: Any) -> None:
        ((name, body),) = recv.items()
        command = name.removesuffix("_RSP")
        if command in COMMANDS and body.get("st") in COMMANDS[command].success:
            self.diverged = True

    def prepare(self, request: Any) -> tuple[str, tuple[Any, ...]] | None:
        try:
            request = vectors.substitute(request, self.bindings)
        except KeyError:
            return None  # a token from a step that was skipped
        call = to_call(request)
        return None if call is NOT_EXPRESSIBLE else call  # type: ignore[return-value]

    async def run(self, call: tuple[str, tuple[Any, ...]]) -> tuple[str, Any]:
        method, args = call
        try:
            return "value", await getattr(self.client, method)(*args)
        except ResponseError as error:
            return "error", error
        except (TypeError, ValueError) as error:
            return "refused", error

    def check(self, request: Any, recv: Any, outcome: tuple[str, Any]) -> None:
        kind, value = outcome
        ((command, params),) = vectors.substitute(request, self.bindings).items()
        ((name, body),) = recv.items()
        success = name == f"{command}_RSP" and body.get("st") in COMMANDS[command].success
        where = f"{self.scenario.name}: {request} -> {recv}: got {kind} {value!r}"
        unordered = self.scenario.unordered_arrays
        if kind == "refused":
            assert not success, where  # the API refused a request the server accepts
            assert not isinstance(value, RequestTooLargeError), where
            self.refused_locally += 1
            return
        self.replayed += 1
        if not success:
            assert kind == "error", where
            assert value.status == body["st"], where
            assert vectors.matches(body, value.rsp, self.bindings, unordered), where
            return
        assert kind == "value", where
        if command == "SH_NEW":
            session = unwrap(value)
            assert isinstance(session, Session), where
            vectors.bind_new_tokens(
                recv, {"SH_NEW_RSP": {"st": 1, "tkn": session.tkn}}, self.bindings
            )
            return
        expected = expected_result(command, body, params)
        assert vectors.matches(expected, value, self.bindings, unordered), where


def requests_of(scenario: vectors.Scenario) -> list[Any]:
    return [
        request
        for step in scenario.steps
        for request in (step.get("send_many") or [step.get("send")])
        if request is not None
    ]


REPLAYABLE = [
    s
    for s in SCENARIOS
    if s.name not in SLOW and any(to_call(r) is not NOT_EXPRESSIBLE for r in requests_of(s))
]


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.name) for s in REPLAYABLE])
def test_replay(
    flavour: Flavour, scenario: vectors.Scenario, ndb_server_factory: Any, tmp_path: Path
) -> None:
    settings = vectors.server_settings(scenario.server)
    payload = settings["maxPayload"]
    if settings["persist"]:
        server = ndb_server_factory(max_payload=payload, persist_dir=tmp_path)
    else:
        server = ndb_server_factory(max_payload=payload)

    async def main() -> Replay:
        async with flavour.connected(server.url, max_message_size=payload) as client:
            replay = Replay(client, scenario)
            for step in scenario.steps:
                if replay.diverged:
                    break
                if "send" in step or "send_text" in step or "send_binary" in step:
                    call = replay.prepare(step.get("send"))
                    if call is None:
                        replay.skip(step["recv"])
                    else:
                        replay.check(step["send"], step["recv"], await replay.run(call))
                elif "send_many" in step:
                    pairs = [
                        (request, recv, replay.prepare(request))
                        for request, recv in zip(step["send_many"], step["recv_many"], strict=True)
                    ]
                    for _, recv, call in pairs:
                        if call is None:
                            replay.skip(recv)
                    pairs = [p for p in pairs if p[2] is not None]
                    if flavour.name == "asyncio":
                        # Submitted in order from concurrent tasks: pipelined, FIFO.
                        outcomes = await flavour.gather(
                            *[lambda call=call: replay.run(call) for _, _, call in pairs]
                        )
                        results = [o.unwrap() for o in outcomes]
                    else:
                        results = [await replay.run(call) for _, _, call in pairs]
                    for (request, recv, _), result in zip(pairs, results, strict=True):
                        replay.check(request, recv, result)
                elif "send_oversize" in step:
                    text = vectors.oversize_text(step["send_oversize"])
                    value = text[len('{"KV_SET":{"keys":{"k":"') : -len('"}}}')]
                    if step["recv"] == {"$closed": True}:
                        # The server would drop the connection: the API refuses to send it.
                        with pytest.raises(RequestTooLargeError):
                            await client.kv_set({"k": value})
                    else:
                        replay.check(
                            {"KV_SET": {"keys": {"k": value}}},
                            step["recv"],
                            await replay.run(("kv_set", ({"k": value},))),
                        )
            return replay

    replay = flavour.run(main)
    if replay.replayed + replay.refused_locally == 0:
        pytest.skip("its first state-changing request cannot be made through the API")


def test_replay_covers_the_vectors() -> None:
    """Most recorded requests are expressible through the API (guards the mapping above)."""
    requests = [r for s in SCENARIOS for r in requests_of(s)]
    expressible = [r for r in requests if to_call(r) is not NOT_EXPRESSIBLE]
    assert len(expressible) >= 0.75 * len(requests), (len(expressible), len(requests))
    assert len(REPLAYABLE) >= 30
