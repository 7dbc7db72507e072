"""The options are declared once (``ndb_proto.options``); the core's constructor is derived."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from ndb_proto.client import ClientProtocol
from ndb_proto.options import MAX_SECONDS, ProtocolOptions
from ndb_proto.reconnect import Backoff
from tests.proto.helpers import URI


def test_the_core_takes_every_declared_option_as_a_keyword_with_its_default() -> None:
    parameters = inspect.signature(ClientProtocol).parameters
    declared = fields(ProtocolOptions)
    assert list(parameters) == ["uris", *(f.name for f in declared), "random"]
    for option in declared:
        parameter = parameters[option.name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == option.default
        assert parameter.annotation == option.type


def test_every_option_is_documented_and_readable_on_the_core() -> None:
    client = ClientProtocol(URI, ping_interval=3.0, backoff=Backoff(initial=1.0))
    for option in fields(ProtocolOptions):
        assert option.metadata["doc"].strip()
        assert getattr(client, option.name) == getattr(client.options, option.name)
    assert client.ping_interval == 3.0 and client.backoff == Backoff(initial=1.0)
    assert client.max_in_flight == 64 and client.options.max_in_flight == 64


def test_a_core_from_options_already_built() -> None:
    options = ProtocolOptions(max_in_flight=3, auto_reconnect=False)
    client = ClientProtocol.from_options(["ws://a", "ws://b"], options)
    assert client.options is options
    assert client.max_in_flight == 3 and client.auto_reconnect is False
    assert len(client.endpoints) == 2
    with pytest.raises(ValueError, match="at least one server"):
        ClientProtocol.from_options([], options)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("connect_timeout", 0.0, r"connect_timeout must be > 0 .*, got 0\.0"),
        ("connect_timeout", float("nan"), "connect_timeout must be > 0 .*, got nan"),
        ("close_timeout", MAX_SECONDS * 2, r"close_timeout must be .* at most 1000000 seconds"),
        ("ping_timeout", float("inf"), "ping_timeout must be .* at most 1000000 seconds, got inf"),
        ("ping_interval", -1.0, r"ping_interval must be None, or > 0 .*, got -1\.0"),
        ("ping_interval", 1e300, r"ping_interval must be None, .* at most 1000000 seconds"),
        ("max_in_flight", 0, "max_in_flight must be >= 1, got 0"),
        ("reply_budget", 0, "reply_budget must be >= 1, got 0"),
        ("max_incoming_message_size", 10, "max_incoming_message_size must be None or at least"),
        ("max_message_size", 8193, r"max_message_size must be in 64\.\.8192"),
    ],
)
def test_the_declared_checks_name_the_option(option: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProtocolOptions(**{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("connect_timeout", "5"),
        ("connect_timeout", True),
        ("ping_interval", "1"),
        ("max_in_flight", 2.5),
        ("max_in_flight", True),
        ("reply_budget", "1"),
        ("max_incoming_message_size", 2048.0),
        ("max_message_size", "1024"),
        ("auto_reconnect", 1),
        ("backoff", 5),
        ("subprotocols", "abc"),
        ("subprotocols", [b"abc"]),
        ("subprotocols", 7),
        ("extra_headers", "a: b"),
        ("extra_headers", 7),
        ("extra_headers", [("a", 1)]),
        ("extra_headers", [("a", "b", "c")]),
        ("extra_headers", ["ab"]),
    ],
)
def test_values_of_the_wrong_type_are_refused_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"^{option}(\[\d+\])? must be "):
        ProtocolOptions(**{option: value})  # type: ignore[arg-type]


def test_values_the_checks_accept() -> None:
    options = ProtocolOptions(
        backoff=Backoff(),
        subprotocols=["a", "b"],
        extra_headers=[("a", "b"), ["c", "d"]],  # type: ignore[list-item]
        connect_timeout=3,
    )
    assert options.subprotocols == ["a", "b"] and options.connect_timeout == 3
    options = ProtocolOptions(ping_interval=None, max_incoming_message_size=None)
    assert options.ping_interval is None and options.max_incoming_message_size is None
    assert ProtocolOptions(ping_interval=0.5, max_incoming_message_size=1024).ping_interval == 0.5


def test_the_longest_duration_is_accepted() -> None:
    options = ProtocolOptions(connect_timeout=MAX_SECONDS, ping_interval=MAX_SECONDS)
    assert options.connect_timeout == MAX_SECONDS and options.ping_interval == MAX_SECONDS
