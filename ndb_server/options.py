"""The embedded servers' options, each declared once: name, type, default, check and meaning.

`NdbServer`, `MemoryServer` and `ServerThread` take these same keywords; their constructors are
generated from this declaration by ``python -m ndb_transports._generate`` (``_keywords.py`` in
this package, drift-checked like the clients'), in the way ``ndb_proto.options`` declares the
client's. The checks run when the options are built, so a bad value raises, naming the option,
before a server starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ndb_proto.options import about, at_least, check_declared, positive, within
from ndb_transports.clock import check_clock

BACKPRESSURE_LIMIT = 128 * 1024
"""NemesisDB's ``maxBackpressure``: past this many unread bytes, replies are dropped."""
SWEEP_INTERVAL = 5.0
"""Seconds between NemesisDB's sweeps of expired sessions."""

ClockOption = Any
"""None (real time), a `ndb_transports.clock.VirtualClock`, ``trio.testing.MockClock``, or a
function returning seconds (see `ndb_transports.clock`)."""


def check_address(host: object, port: object) -> None:
    """Refuse, naming the parameter, a ``host`` that is not a string or a ``port`` outside
    0..65535 (0: a free port), before anything listens."""
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {port!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")


def _directory_or_none(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be None or a path, got {value!r}")
    if not os.path.isdir(value):
        raise ValueError(f"{name} {os.fspath(value)!r} is not a directory")


def _seconds(name: str, value: object) -> None:
    positive(name, value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """What every embedded server can be configured with (its constructor's keywords)."""

    max_payload: int = field(
        default=1024,
        metadata=about(
            "NemesisDB's maxPayload (1024 as shipped, 64..8192): a larger message from a client "
            "drops its connection.",
            within(64, 8192, "NemesisDB's maxPayload range"),
        ),
    )
    persist_dir: str | os.PathLike[str] | None = field(
        default=None,
        metadata=about(
            "An existing directory where KV_SAVE/SH_SAVE write and KV_LOAD/SH_LOAD read (None: "
            "persistence disabled, as in NemesisDB's default config).",
            _directory_or_none,
        ),
    )
    idle_ping: float = field(
        default=164.0,
        metadata=about("Seconds of silence before a client is pinged (NemesisDB: 164).", _seconds),
    )
    idle_timeout: float = field(
        default=180.0,
        metadata=about("Seconds of silence before a client is dropped (NemesisDB: 180).", _seconds),
    )
    sweep_interval: float = field(
        default=SWEEP_INTERVAL,
        metadata=about("Seconds between sweeps removing expired sessions.", _seconds),
    )
    backpressure_limit: int = field(
        default=BACKPRESSURE_LIMIT,
        metadata=about(
            "Unread bytes of output past which replies are silently dropped, as NemesisDB does "
            "past 128 KiB.",
            at_least(1),
        ),
    )
    clock: ClockOption = field(
        default=None,
        metadata=about(
            "The clock the server's time follows: session expiry, the sweep and the idle ping and "
            "drop (None: real time; a MemoryServer then has its own clock, moved by advance). "
            "A VirtualClock, trio's MockClock, or a function returning seconds; see "
            "docs/testing.md.",
            check_clock,
        ),
    )

    def __post_init__(self) -> None:
        check_declared(self)
