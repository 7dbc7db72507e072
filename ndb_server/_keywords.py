"""The embedded servers' constructors and option attributes, derived from
`ndb_server.options.ServerOptions`.
Generated: do not edit. Change the declarations and run ``python -m ndb_transports._generate``."""

# ruff: noqa: E501
# fmt: off

from __future__ import annotations

import os

from ndb_server.options import ClockOption, ServerOptions


class ServerOptionAttributes:
    """One read-only attribute per option of `ServerOptions`."""

    options: ServerOptions

    @property
    def max_payload(self) -> int: return self.options.max_payload
    @property
    def persist_dir(self) -> str | os.PathLike[str] | None: return self.options.persist_dir
    @property
    def idle_ping(self) -> float: return self.options.idle_ping
    @property
    def idle_timeout(self) -> float: return self.options.idle_timeout
    @property
    def sweep_interval(self) -> float: return self.options.sweep_interval
    @property
    def backpressure_limit(self) -> int: return self.options.backpressure_limit
    @property
    def clock(self) -> ClockOption: return self.options.clock


class NdbServerKeywords(ServerOptionAttributes):
    def __init__(self, host: str = "127.0.0.1", port: int = 1987, *, max_payload: int = 1024, persist_dir: str | os.PathLike[str] | None = None, idle_ping: float = 164.0, idle_timeout: float = 180.0, sweep_interval: float = 5.0, backpressure_limit: int = 131072, clock: ClockOption = None) -> None:
        """Configure the server. Invalid options raise ValueError or TypeError naming the option.

        ``host`` and ``port`` to listen on (``port=0`` picks a free port; `url` tells which).
        ``max_payload``: NemesisDB's maxPayload (1024 as shipped, 64..8192): a larger message from a
        client drops its connection.
        ``persist_dir``: An existing directory where KV_SAVE/SH_SAVE write and KV_LOAD/SH_LOAD read
        (None: persistence disabled, as in NemesisDB's default config).
        ``idle_ping``: Seconds of silence before a client is pinged (NemesisDB: 164).
        ``idle_timeout``: Seconds of silence before a client is dropped (NemesisDB: 180).
        ``sweep_interval``: Seconds between sweeps removing expired sessions.
        ``backpressure_limit``: Unread bytes of output past which replies are silently dropped, as
        NemesisDB does past 128 KiB.
        ``clock``: The clock the server's time follows: session expiry, the sweep and the idle ping
        and drop (None: real time; a MemoryServer then has its own clock, moved by advance). A
        VirtualClock, trio's MockClock, or a function returning seconds; see docs/testing.md.
        """
        self._configure(host, port, ServerOptions(max_payload=max_payload, persist_dir=persist_dir, idle_ping=idle_ping, idle_timeout=idle_timeout, sweep_interval=sweep_interval, backpressure_limit=backpressure_limit, clock=clock))

    def _configure(self, host: str, port: int, options: ServerOptions) -> None:
        raise NotImplementedError


class MemoryServerKeywords(ServerOptionAttributes):
    def __init__(self, *, name: str | None = None, start_time: float = 0.0, max_payload: int = 1024, persist_dir: str | os.PathLike[str] | None = None, idle_ping: float = 164.0, idle_timeout: float = 180.0, sweep_interval: float = 5.0, backpressure_limit: int = 131072, clock: ClockOption = None) -> None:
        """Configure the server. Invalid options raise ValueError or TypeError naming the option.

        ``name`` makes the URL ``memory://name/`` (None: ``ndb-N``, unique); ``start_time`` is where
        the server's own clock starts (with ``clock`` set, the server reads that instead).
        ``max_payload``: NemesisDB's maxPayload (1024 as shipped, 64..8192): a larger message from a
        client drops its connection.
        ``persist_dir``: An existing directory where KV_SAVE/SH_SAVE write and KV_LOAD/SH_LOAD read
        (None: persistence disabled, as in NemesisDB's default config).
        ``idle_ping``: Seconds of silence before a client is pinged (NemesisDB: 164).
        ``idle_timeout``: Seconds of silence before a client is dropped (NemesisDB: 180).
        ``sweep_interval``: Seconds between sweeps removing expired sessions.
        ``backpressure_limit``: Unread bytes of output past which replies are silently dropped, as
        NemesisDB does past 128 KiB.
        ``clock``: The clock the server's time follows: session expiry, the sweep and the idle ping
        and drop (None: real time; a MemoryServer then has its own clock, moved by advance). A
        VirtualClock, trio's MockClock, or a function returning seconds; see docs/testing.md.
        """
        self._configure(name, start_time, ServerOptions(max_payload=max_payload, persist_dir=persist_dir, idle_ping=idle_ping, idle_timeout=idle_timeout, sweep_interval=sweep_interval, backpressure_limit=backpressure_limit, clock=clock))

    def _configure(self, name: str | None, start_time: float, options: ServerOptions) -> None:
        raise NotImplementedError


class ServerThreadKeywords(ServerOptionAttributes):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_payload: int = 1024, persist_dir: str | os.PathLike[str] | None = None, idle_ping: float = 164.0, idle_timeout: float = 180.0, sweep_interval: float = 5.0, backpressure_limit: int = 131072, clock: ClockOption = None) -> None:
        """Configure the server. Invalid options raise ValueError or TypeError naming the option.

        ``host`` and ``port`` to listen on (``port=0``, the default here, picks a free port).
        ``max_payload``: NemesisDB's maxPayload (1024 as shipped, 64..8192): a larger message from a
        client drops its connection.
        ``persist_dir``: An existing directory where KV_SAVE/SH_SAVE write and KV_LOAD/SH_LOAD read
        (None: persistence disabled, as in NemesisDB's default config).
        ``idle_ping``: Seconds of silence before a client is pinged (NemesisDB: 164).
        ``idle_timeout``: Seconds of silence before a client is dropped (NemesisDB: 180).
        ``sweep_interval``: Seconds between sweeps removing expired sessions.
        ``backpressure_limit``: Unread bytes of output past which replies are silently dropped, as
        NemesisDB does past 128 KiB.
        ``clock``: The clock the server's time follows: session expiry, the sweep and the idle ping
        and drop (None: real time; a MemoryServer then has its own clock, moved by advance). A
        VirtualClock, trio's MockClock, or a function returning seconds; see docs/testing.md.
        """
        self._configure(host, port, ServerOptions(max_payload=max_payload, persist_dir=persist_dir, idle_ping=idle_ping, idle_timeout=idle_timeout, sweep_interval=sweep_interval, backpressure_limit=backpressure_limit, clock=clock))

    def _configure(self, host: str, port: int, options: ServerOptions) -> None:
        raise NotImplementedError
