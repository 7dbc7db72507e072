"""The server state every command handler works on, and the helpers several handlers share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ndb_proto.status import Status
from ndb_server._persist import SaveFailed, is_safe_name, save_dataset
from ndb_server._replies import Reply, RequestBody, reply
from ndb_server._sessions import Sessions
from ndb_server._wirejson import is_u64

__all__ = ["Handler", "ServerState", "elapsed_ms", "save_reply", "token_of"]


@dataclass(slots=True)
class ServerState:
    """Everything one server process holds: the KV store, the sessions and its settings."""

    clock: Callable[[], float]
    """Monotonic seconds; the only time source for expiry and durations."""
    wallclock_ns: Callable[[], int]
    """Wall-clock nanoseconds since the epoch; names a save's ``<T>`` directory."""
    token_source: Callable[[], int]
    """Random u64 for new session tokens."""
    persist_root: Path | None
    """Persistence directory, or None when persistence is disabled."""
    store: dict[str, object] = field(default_factory=dict)
    sessions: Sessions = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.clock)


Handler = Callable[[ServerState, RequestBody], Reply]
"""A command handler: state and the request's parameter object in, one reply out."""


def token_of(value: object) -> int | None:
    """``value`` as a session token, or None: tokens are integer literals in ``0..2**64-1``."""
    return value if is_u64(value) else None  # type: ignore[return-value]  # is_u64 narrows


def elapsed_ms(state: ServerState, started: float) -> int:
    """Whole milliseconds on the injected clock since ``started``."""
    return max(0, int((state.clock() - started) * 1000))


def save_reply(
    state: ServerState, rsp: str, name: str, data_type: int, files: Iterable[bytes]
) -> Reply:
    """Save a dataset and build the ``KV_SAVE``/``SH_SAVE`` reply (121, 122 or 123).

    The caller has checked that persistence is enabled. Unsafe names are refused with the
    reply the server sends when it cannot create the dataset's directories (122).
    """
    assert state.persist_root is not None
    if not is_safe_name(name):
        return reply(rsp, Status.SAVE_DIR_WRITE_FAIL, name=name)
    started = state.clock()
    try:
        save_dataset(state.persist_root, name, data_type, files, state.wallclock_ns)
    except SaveFailed as failure:
        if failure.status == Status.SAVE_DIR_WRITE_FAIL:
            return reply(rsp, Status.SAVE_DIR_WRITE_FAIL, name=name)
        return reply(rsp, Status.SAVE_ERROR, duration=elapsed_ms(state, started), name=name)
    return reply(rsp, Status.SAVE_COMPLETE, duration=elapsed_ms(state, started), name=name)
