"""The NemesisDB 0.7.4 server engine: one request text in, exactly one reply text out.

``Engine`` holds the whole server state (KV store, sessions, settings) and answers requests the
way the real server does on the wire (docs/protocol.md §3 dispatch, §6-§9 commands). It does no I/O
except reading and writing datasets under ``persist_dir``: no sockets, threads or clock reads.
Time comes from the injected monotonic ``clock``; the network layer calls ``sweep_expired``
every 5 seconds, which is the server's session-expiry monitor. Frame size limits and invalid
UTF-8 are the network layer's business too. Like the real server's single event-loop thread,
an ``Engine`` expects to be called from one thread at a time.

Deliberate deviations from NemesisDB 0.7.4:

1. Unknown commands of dispatch step 9 (``SV_FOO``, ``XX_Y``, ``kv_set``, ...) are answered with
   their own name, ``{"<NAME>_RSP":{"m":"","st":10,"tkn":null}}``. The real server reuses the
   name of the first unknown command it ever met for every later one.
2. Saved datasets escape key names properly. The real server writes them raw, so a key
   containing ``"`` or ``\\`` makes its dataset unloadable; such datasets load here (and on a
   real server) because the data files are valid JSON.
3. Session durations above the signed 64-bit nanosecond range (> 9,223,372,036 s) do not
   overflow: such a session simply never expires in practice (its period is clamped to that
   value), and ``SH_INFO`` reports the duration as given. The real server wraps around and
   expires the session at the next sweep.
4. Saves are atomic: the new ``<T>`` directory is assembled under ``<persist>/.ndb-staging/``,
   data files first and ``md.json`` last, all fsynced, then renamed into ``<persist>/<name>/``.
   A crash or write error leaves either no new ``<T>`` or a complete one.
5. Dataset names that would escape the persistence directory are refused: ``""``, ``"."``,
   ``".."``, ``".ndb-staging"`` and any name containing ``/``, ``\\`` or NUL.
   ``KV_SAVE``/``SH_SAVE`` answer ``{"name":..,"st":122}`` (what the server sends when it
   cannot create the dataset's directories). ``KV_LOAD``/``SH_LOAD`` answer
   ``{"name":..,"st":142}`` (dataset missing), except for ``name:""``, which keeps the server's
   reply: ``{"ERR":{"m":"","st":1000}}`` for ``KV_LOAD`` and
   ``{"SH_LOAD_RSP":{"m":"","st":1000,"tkn":null}}`` for ``SH_LOAD``.
6. With persistence disabled, ``KV_LOAD``/``SH_LOAD`` have no directory to read and answer as for
   a missing dataset (``{"name":..,"st":142}``); the real server reads its configured path anyway.
7. JSONPath is RFC 9535 (``jsonpath-rfc9535``), not the jsoncons dialect: the paths of the
   recorded vectors behave identically, jsoncons-only extensions are reported as invalid paths.
8. ``SH_NEW`` retries a colliding token (up to 16 draws) before answering 103.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ndb_proto.status import Status
from ndb_server._kv_commands import KV_COMMANDS
from ndb_server._replies import Reply, RequestBody, command_error, envelope_error, reply
from ndb_server._sh_commands import SH_COMMANDS
from ndb_server._state import ServerState
from ndb_server._wirejson import JsonInvalid, dumps, parse

__all__ = ["Engine"]

SERVER_VERSION: Final = "0.7.4"

_BINARY_REPLY: Final = '{"ERR":{"m":"","st":2}}'
_FAILURE_REPLY: Final = '{"ERR":{"m":"","st":1000}}'
_RECURSION_HEADROOM: Final = 8000
"""Recursion limit an engine needs: 1024-deep JSON costs a frame per level to parse, copy, query
and serialise, on top of the caller's own stack. Importing the engine raises the process's limit
to this, once, and nothing lowers it: toggling it per request would race with other threads of the
process (a client decoding in another thread, say), and raising it later, when the first engine
is created, would change it under whatever is running then (a test runner that saves and restores
the limit around each test, for one)."""

if sys.getrecursionlimit() < _RECURSION_HEADROOM:
    sys.setrecursionlimit(_RECURSION_HEADROOM)


def _random_token() -> int:
    return secrets.randbits(64)


class Engine:
    """A NemesisDB 0.7.4 server without the network: text requests in, text replies out."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        persist_dir: str | os.PathLike[str] | None = None,
        token_source: Callable[[], int] | None = None,
        wallclock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        """Create an empty server.

        ``clock``: monotonic seconds, for session expiry and save/load durations.
        ``persist_dir``: the persistence directory; None disables ``KV_SAVE``/``SH_SAVE`` (st 14).
        ``token_source``: random u64 for new session tokens (default ``secrets.randbits(64)``).
        ``wallclock_ns``: nanoseconds since the epoch, naming each save's ``<T>`` directory.
        """
        self._state = ServerState(
            clock=clock,
            wallclock_ns=wallclock_ns,
            token_source=token_source if token_source is not None else _random_token,
            persist_root=Path(persist_dir) if persist_dir is not None else None,
        )
        self._sv_info: Final = dumps(
            reply(
                "SV_INFO_RSP",
                Status.OK,
                persistEnabled=self.persist_enabled,
                serverVersion=SERVER_VERSION,
            )
        )

    @property
    def persist_enabled(self) -> bool:
        """Whether ``KV_SAVE``/``SH_SAVE`` are available (``SV_INFO``'s ``persistEnabled``)."""
        return self._state.persist_root is not None

    def handle_text(self, text: str) -> str:
        """Answer one text message with exactly one compact JSON reply."""
        return self._answer(text)

    def handle_binary(self, data: bytes) -> str:
        """Answer a binary message: the server only processes text (``ERR`` 2)."""
        del data
        return _BINARY_REPLY

    def sweep_expired(self) -> None:
        """Run the session-expiry monitor once (the server runs it every 5 seconds)."""
        self._state.sessions.sweep()

    def _answer(self, text: str) -> str:
        try:
            request = parse(text)
        except JsonInvalid:
            return dumps(envelope_error(Status.JSON_INVALID))
        if not isinstance(request, dict) or len(request) != 1:
            return dumps(envelope_error(Status.COMMAND_SYNTAX))
        ((name, body),) = request.items()
        if name == "SV_INFO" and isinstance(body, dict):
            return self._sv_info
        try:
            return dumps(self._dispatch(name, body))
        except Exception:  # e.g. a value nested too deep to serialise
            return _FAILURE_REPLY

    def _dispatch(self, name: str, body: object) -> Reply:
        """docs/protocol.md §3 steps 4-9 for a request ``{name: body}``."""
        rsp = f"{name}_RSP"
        if not isinstance(body, dict) or "_" not in name:
            return command_error(rsp, Status.COMMAND_SYNTAX)
        prefix = name.partition("_")[0]
        if prefix == "KV":
            kv_handler = KV_COMMANDS.get(name)
            if kv_handler is None:
                return envelope_error(Status.COMMAND_NOT_EXIST)
            return self._run_kv(kv_handler, body)
        if prefix == "SH":
            sh_handler = SH_COMMANDS.get(name)
            if sh_handler is None:
                return command_error(rsp, Status.COMMAND_NOT_EXIST)
            try:
                return sh_handler(self._state, body)
            except Exception:
                return command_error(rsp, Status.UNKNOWN)
        return command_error(rsp, Status.COMMAND_NOT_EXIST)  # deviation 1: the request's own name

    def _run_kv(
        self, handler: Callable[[ServerState, RequestBody], Reply], body: RequestBody
    ) -> Reply:
        try:
            return handler(self._state, body)
        except Exception:
            return envelope_error(Status.UNKNOWN)
