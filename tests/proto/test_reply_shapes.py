"""A success reply that NemesisDB 0.7.4 could not send (a member missing, of another JSON type,
or a token out of range) raises `ReplyShapeError` instead of reaching the caller."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndb_proto import calls
from ndb_proto.client import State
from ndb_proto.commands import ReplyShapeError, Request
from ndb_proto.errors import RemoteProtocolError
from ndb_proto.events import RequestFailed
from ndb_proto.session import Session
from tests.proto.helpers import budget, open_client, pump

TOKEN = 2**64 - 2  # above 2**63, as real tokens often are
EXPIRY = {
    "deleteSession": True,
    "duration": 10,
    "extendOnGet": False,
    "extendOnSetAdd": True,
    "remaining": -2,  # signed: negative between the expiry and the next sweep
}

# (id, request, a success body as NemesisDB 0.7.4 sends it (see the vectors), the path of each
# member the result relies on, and whether the request checks that member's value (an echo).
Case = tuple[str, Callable[[], Request[Any]], dict[str, Any], list[tuple[str, ...]], set[str]]
READERS: list[Case] = [
    (
        "sv_info",
        calls.sv_info,
        {"persistEnabled": False, "serverVersion": "0.7.4", "st": 1},
        [("persistEnabled",), ("serverVersion",)],
        set(),
    ),
    (
        "sh_info-never-expires",
        lambda: calls.sh_info(TOKEN),
        {"expires": False, "keyCnt": 2, "shared": False, "st": 1, "tkn": TOKEN},
        [("expires",), ("keyCnt",), ("shared",), ("tkn",)],
        {"tkn"},
    ),
    (
        "sh_info-expires",
        lambda: calls.sh_info(TOKEN),
        {"expires": True, "expiry": EXPIRY, "keyCnt": 0, "shared": False, "st": 1, "tkn": TOKEN},
        [("expires",), ("keyCnt",), ("shared",), ("tkn",), ("expiry",)]
        + [("expiry", name) for name in EXPIRY],
        {"tkn"},
    ),
    (
        "sh_info_all",
        calls.sh_info_all,
        {"st": 1, "totalKeys": 4, "totalSessions": 2},
        [("totalKeys",), ("totalSessions",)],
        set(),
    ),
    (
        "sh_load",
        lambda: calls.sh_load("sel"),
        {"keys": 1, "name": "sel", "sessions": 1, "st": 141},
        [("keys",), ("name",), ("sessions",)],
        {"name"},
    ),
    ("sh_create", calls.sh_create, {"st": 1, "tkn": TOKEN}, [("tkn",)], set()),
    ("sh_end", lambda: calls.sh_end(TOKEN), {"st": 1, "tkn": TOKEN}, [("tkn",)], {"tkn"}),
    (
        "kv_load",
        lambda: calls.kv_load("ds"),
        {"duration": 3, "keys": 2, "name": "ds", "sessions": 0, "st": 141},
        [("keys",), ("name",)],
        {"name"},
    ),
    (
        "sh_exists",
        lambda: calls.sh_session_exists([1, TOKEN]),
        {"exist": [TOKEN], "st": 1},
        [("exist",)],
        set(),
    ),
]
IDS = [case[0] for case in READERS]

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3)
)
json_values = (
    json_scalars
    | st.lists(json_scalars, max_size=2)
    | st.dictionaries(st.text(max_size=2), json_scalars, max_size=2)
)


def _parent(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for name in path[:-1]:
        body = body[name]
    return body


@pytest.mark.parametrize("case", READERS, ids=IDS)
def test_the_replies_0_7_4_sends_are_read(case: Case) -> None:
    _, build, body, _, _ = case
    build().result(copy.deepcopy(body))  # no error: everything it relies on is there


@pytest.mark.parametrize("case", READERS, ids=IDS)
def test_a_missing_member_is_a_shape_error(case: Case) -> None:
    _, build, body, paths, echoed = case
    for path in paths:
        broken = copy.deepcopy(body)
        del _parent(broken, path)[path[-1]]
        # A missing echo is taken for a reply to another request; both are protocol errors.
        expected = RemoteProtocolError if path[0] in echoed else ReplyShapeError
        with pytest.raises(expected):
            build().result(broken)


@given(data=st.data())
@budget(40)
@pytest.mark.parametrize("case", READERS, ids=IDS)
def test_a_member_of_another_json_type_is_refused(case: Case, data: st.DataObject) -> None:
    _, build, body, paths, echoed = case
    path = data.draw(st.sampled_from(paths))
    broken = copy.deepcopy(body)
    parent = _parent(broken, path)
    kind = type(parent[path[-1]])
    parent[path[-1]] = data.draw(json_values.filter(lambda value: type(value) is not kind))
    expected = RemoteProtocolError if path[0] in echoed else ReplyShapeError
    with pytest.raises(expected):
        build().result(broken)


@pytest.mark.parametrize(("token", "twin"), [(5, 5.0), (1, True), (0, False)])
def test_an_echoed_token_equal_but_not_an_int_is_a_shape_error(token: int, twin: Any) -> None:
    with pytest.raises(ReplyShapeError):
        calls.sh_end(token).result({"st": 1, "tkn": twin})
    with pytest.raises(ReplyShapeError):
        calls.sh_session_exists([token]).result({"exist": [twin], "st": 1})


def test_expiry_is_there_exactly_when_the_session_expires() -> None:
    never = {"expires": False, "expiry": EXPIRY, "keyCnt": 0, "shared": False, "st": 1, "tkn": 5}
    with pytest.raises(ReplyShapeError):
        calls.sh_info(5).result(never)
    expires = {"expires": True, "keyCnt": 0, "shared": False, "st": 1, "tkn": 5}
    with pytest.raises(ReplyShapeError):
        calls.sh_info(5).result(expires)


@given(st.integers(max_value=-1) | st.integers(min_value=2**64))
@budget(30)
def test_a_new_token_out_of_the_u64_range_is_a_shape_error(token: int) -> None:
    with pytest.raises(ReplyShapeError):
        calls.sh_create().result({"st": 1, "tkn": token})


@given(st.integers(0, 2**64 - 1))
@budget(30)
def test_a_new_token_in_range_makes_a_session(token: int) -> None:
    session = calls.sh_create().result({"st": 1, "tkn": token})
    assert isinstance(session, Session) and session.tkn == token


@pytest.mark.parametrize(
    ("build", "reply"),
    [
        (calls.sv_info, '{"SV_INFO_RSP":{"st":1}}'),
        (lambda: calls.sh_info(5), '{"SH_INFO_RSP":{"st":1,"tkn":5}}'),
        (calls.sh_create, '{"SH_NEW_RSP":{"st":1,"tkn":-5}}'),
        (calls.sh_create, '{"SH_NEW_RSP":{"st":1,"tkn":18446744073709551616}}'),
        (calls.sh_create, '{"SH_NEW_RSP":{"st":1,"tkn":true}}'),
    ],
)
def test_an_impossible_success_reply_fails_only_its_request(
    build: Callable[[], Request[Any]], reply: str
) -> None:
    client, server = open_client()
    request_id = client.submit(build())
    pump(client, server)
    client.receive_data(server.text(reply), 0.0)
    (failed,) = [e for e in client.events() if isinstance(e, RequestFailed)]
    assert failed.request_id == request_id and isinstance(failed.error, ReplyShapeError)
    assert client.pending == 0 and client.state is State.OPEN
