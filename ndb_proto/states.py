"""The client core's states and every legal change between them, as one table.

`ClientProtocol` changes its state only through `transition`, so `TRANSITIONS` is the whole
truth about its lifecycle: a change the table does not list raises `LocalProtocolError` (the core
was driven in a way it does not allow). ``tests/proto/test_states.py`` walks every entry through a
real core and every other pair through `transition`; ``docs/state-diagram.md`` is drawn from the
table by `mermaid` (``python -m ndb_transports._generate`` writes it, and a test keeps it current).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final

from ndb_proto.errors import LocalProtocolError


class State(Enum):
    """Where the core is in its life (values are what messages and the diagram show)."""

    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    IDLE = "idle"
    CLOSING = "closing"
    CLOSED = "closed"


class Trigger(Enum):
    """What changes the state: a call of the transport or the user (named like the method),
    or something the core found in what it received or in the time (described)."""

    CONNECTION_MADE = "connection_made()"
    CONNECTION_FAILED = "connection_failed()"
    HANDSHAKE_ACCEPTED = "handshake accepted"
    CONNECTION_ENDED = "connection ended"
    CLOSE = "close()"
    CLOSE_DONE = "close done"


TRIGGER_MEANINGS: Final[Mapping[Trigger, str]] = MappingProxyType(
    {
        Trigger.CONNECTION_MADE: "the transport opened a socket: the WebSocket handshake starts",
        Trigger.CONNECTION_FAILED: (
            "an attempt failed before a socket opened (the next one is planned; after close() "
            "it is ignored)"
        ),
        Trigger.HANDSHAKE_ACCEPTED: "the server accepted the WebSocket upgrade",
        Trigger.CONNECTION_ENDED: (
            "the socket failed or ended, the server closed, refused or broke the protocol, the "
            "handshake, a keepalive ping or the oldest reply timed out, or reconnect() was called"
        ),
        Trigger.CLOSE: "the user closed the client: pending requests fail at once",
        Trigger.CLOSE_DONE: (
            "the server answered the close frame, the socket ended, or close_timeout passed"
        ),
    }
)
"""What each trigger stands for, in words (the diagram's legend)."""

_S, _T = State, Trigger
TRANSITIONS: Final[Mapping[tuple[State, Trigger], State]] = MappingProxyType(
    {
        (_S.NEW, _T.CONNECTION_MADE): _S.CONNECTING,
        (_S.NEW, _T.CONNECTION_FAILED): _S.NEW,
        (_S.NEW, _T.CLOSE): _S.CLOSED,
        (_S.CONNECTING, _T.HANDSHAKE_ACCEPTED): _S.OPEN,
        (_S.CONNECTING, _T.CONNECTION_ENDED): _S.IDLE,
        (_S.CONNECTING, _T.CLOSE): _S.CLOSED,
        (_S.OPEN, _T.CONNECTION_ENDED): _S.IDLE,
        (_S.OPEN, _T.CLOSE): _S.CLOSING,
        (_S.IDLE, _T.CONNECTION_MADE): _S.CONNECTING,
        (_S.IDLE, _T.CONNECTION_FAILED): _S.IDLE,
        (_S.IDLE, _T.CLOSE): _S.CLOSED,
        (_S.CLOSING, _T.CLOSE_DONE): _S.CLOSED,
        (_S.CLOSED, _T.CONNECTION_FAILED): _S.CLOSED,
    }
)
"""``(state, trigger) -> next state`` for every legal change; nothing else is allowed."""
del _S, _T


def transition(state: State, trigger: Trigger) -> State:
    """The state that ``trigger`` leads to from ``state``; `LocalProtocolError` if none."""
    try:
        return TRANSITIONS[state, trigger]
    except KeyError:
        raise LocalProtocolError(f"{trigger.value} in state {state.value}") from None


def mermaid() -> str:
    """The table as a Mermaid state diagram (``stateDiagram-v2``), in the table's order."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.NEW.name}"]
    lines += [
        f"    {source.name} --> {target.name}: {trigger.value}"
        for (source, trigger), target in TRANSITIONS.items()
    ]
    lines.append(f"    {State.CLOSED.name} --> [*]")
    return "\n".join(lines) + "\n"
