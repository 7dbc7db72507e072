"""The lifecycle table (``ndb_proto.states``): walked exhaustively, through `transition` and
through a real core, and the only way the core's state changes."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from ndb_proto import client as client_module
from ndb_proto.client import ClientProtocol
from ndb_proto.errors import LocalProtocolError
from ndb_proto.states import TRANSITIONS, TRIGGER_MEANINGS, State, Trigger, mermaid, transition
from ndb_proto.uri import parse_uri
from tests.proto.helpers import URI, FakeServer, open_client, start

# --- the table itself ------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(State, Trigger)))
def test_every_pair_is_either_in_the_table_or_refused(state: State, trigger: Trigger) -> None:
    if (state, trigger) in TRANSITIONS:
        assert transition(state, trigger) is TRANSITIONS[state, trigger]
    else:
        with pytest.raises(LocalProtocolError) as info:
            transition(state, trigger)
        assert str(info.value) == f"{trigger.value} in state {state.value}"


def test_every_state_is_reachable_and_only_closed_is_final() -> None:
    reached = {State.NEW}
    while True:
        more = {target for (source, _), target in TRANSITIONS.items() if source in reached}
        if more <= reached:
            break
        reached |= more
    assert reached == set(State)
    leaving = {source for (source, _), target in TRANSITIONS.items() if target is not source}
    assert set(State) - leaving == {State.CLOSED}
    assert set(TRIGGER_MEANINGS) == set(Trigger)


def test_the_diagram_is_the_table() -> None:
    lines = mermaid().splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1].split() == ["[*]", "-->", "NEW"] and lines[-1].split() == [
        "CLOSED",
        "-->",
        "[*]",
    ]
    drawn = {}
    for line in lines[2:-1]:
        arrow, label = line.split(": ", 1)
        source, target = arrow.split(" --> ")
        drawn[State[source.strip()], Trigger(label)] = State[target]
    assert drawn == dict(TRANSITIONS)


# --- the table walked through a real core ------------------------------------------------------


def fresh(state: State) -> tuple[ClientProtocol, FakeServer]:
    """A core brought to ``state`` through its public methods only."""
    server = FakeServer()
    if state is State.NEW:
        return ClientProtocol(URI), server
    if state is State.CONNECTING:
        client = ClientProtocol(URI)
        server.receive(start(client))
        return client, server
    if state is State.CLOSED:
        client = ClientProtocol(URI)
        client.close(0.0)
        return client, server
    client, server = open_client()
    if state is State.IDLE:
        client.connection_lost(OSError("gone"), 0.0)
    elif state is State.CLOSING:
        client.close(0.0)
    return client, server


APPLY: dict[Trigger, Callable[[ClientProtocol, FakeServer], None]] = {
    Trigger.CONNECTION_MADE: lambda c, s: c.connection_made(parse_uri(URI), 100.0),
    Trigger.CONNECTION_FAILED: lambda c, s: c.connection_failed(OSError("refused"), 0.0),
    Trigger.HANDSHAKE_ACCEPTED: lambda c, s: c.receive_data(s.data_to_send(), 0.0),
    Trigger.CONNECTION_ENDED: lambda c, s: c.connection_lost(OSError("reset"), 0.0),
    Trigger.CLOSE: lambda c, s: c.close(0.0),
    Trigger.CLOSE_DONE: lambda c, s: c.receive_data(s.close(), 0.0),
}
"""How each trigger is caused from outside, by a transport or a user."""


@pytest.mark.parametrize(("source", "trigger"), list(TRANSITIONS))
def test_every_transition_happens_in_a_real_core(source: State, trigger: Trigger) -> None:
    client, server = fresh(source)
    assert client.state is source
    APPLY[trigger](client, server)
    assert client.state is TRANSITIONS[source, trigger]


@pytest.mark.parametrize("state", list(State))
def test_transport_calls_the_table_refuses_raise_local_protocol_errors(state: State) -> None:
    for trigger in (Trigger.CONNECTION_MADE, Trigger.CONNECTION_FAILED):
        client, server = fresh(state)
        if (state, trigger) in TRANSITIONS:
            continue
        with pytest.raises(LocalProtocolError, match=f"in state {state.value}"):
            APPLY[trigger](client, server)
        assert client.state is state  # refused before anything changed


def test_the_state_changes_only_through_the_table() -> None:
    """Every assignment to ``_state`` in the core is in ``_configure`` (NEW) or ``_move``."""
    # The source file itself: in the compiled build the module is an extension (its .py beside).
    tree = ast.parse(Path(client_module.__file__).with_name("client.py").read_text("utf-8"))
    assigning = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Assign):
                    targets = node.targets
                elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                    targets = [node.target]
                else:
                    continue
                for target in targets:
                    for leaf in ast.walk(target):
                        if isinstance(leaf, ast.Attribute) and leaf.attr == "_state":
                            assigning.add(function.name)
    assert assigning == {"_configure", "_move"}
