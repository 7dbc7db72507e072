"""The embedded servers' options are declared once (`ServerOptions`): every server takes each
of them, with its declared default, and refuses a bad value naming the option, before it starts
and before any connection."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from trio.testing import MockClock

from ndb_server import MemoryServer, ServerOptions, ServerThread, VirtualClock
from ndb_server.server import NdbServer

SERVERS = [NdbServer, MemoryServer, ServerThread]


@pytest.mark.parametrize("server", SERVERS, ids=lambda cls: cls.__name__)
def test_every_server_takes_every_declared_option_with_its_default(server: type) -> None:
    parameters = inspect.signature(server).parameters
    for declared in fields(ServerOptions):
        parameter = parameters[declared.name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == declared.default
        assert parameter.annotation == declared.type


BAD_VALUES: list[tuple[str, Any, type[Exception]]] = [
    ("max_payload", 63, ValueError),
    ("max_payload", 8193, ValueError),
    ("max_payload", "1024", TypeError),
    ("persist_dir", "/no/such/directory", ValueError),
    ("persist_dir", 5, TypeError),
    ("idle_ping", 0, ValueError),
    ("idle_timeout", -1.0, ValueError),
    ("sweep_interval", 0, ValueError),
    ("backpressure_limit", 0, ValueError),
    ("clock", object(), TypeError),
]


@pytest.mark.parametrize("server", SERVERS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(("name", "value", "error"), BAD_VALUES)
def test_a_bad_option_is_refused_naming_it(
    server: type, name: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=name):
        server(**{name: value})


@pytest.mark.parametrize("server", [NdbServer, ServerThread], ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    ("address", "name", "error"),
    [
        ({"port": 65536}, "port", ValueError),
        ({"port": -1}, "port", ValueError),
        ({"port": "1987"}, "port", TypeError),
        ({"port": True}, "port", TypeError),
        ({"host": 5}, "host", TypeError),
        ({"host": ""}, "host", TypeError),
    ],
)
def test_a_bad_address_is_refused_naming_it(
    server: type, address: dict[str, Any], name: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match=name):
        server(**address)


def test_a_server_thread_not_started_says_so() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = ServerThread().url


@pytest.mark.parametrize("server", SERVERS, ids=lambda cls: cls.__name__)
def test_options_are_readable_as_attributes(server: type, tmp_path: Path) -> None:
    clock = VirtualClock()
    built = server(max_payload=8192, persist_dir=tmp_path, idle_ping=5, clock=clock)
    assert (built.max_payload, built.persist_dir, built.idle_ping) == (8192, tmp_path, 5)
    assert (built.idle_timeout, built.clock) == (180.0, clock)
    if isinstance(built, MemoryServer):
        built.close()


@pytest.mark.parametrize("clock", [VirtualClock(), MockClock(), lambda: 0.0])
def test_every_kind_of_clock_is_accepted(clock: Any) -> None:
    with MemoryServer(clock=clock) as server:
        assert server.clock is clock
