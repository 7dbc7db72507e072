"""The generated client methods match ``ndb_proto/calls.py`` (no drift), and every flavour has
every method of the surface."""

from __future__ import annotations

import inspect

import pytest

from ndb_proto import calls
from ndb_transports import _generate, sync
from ndb_transports import asyncio as aio
from ndb_transports import trio as tr


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_generated_files_are_up_to_date(flavour: str) -> None:
    assert _generate.OUTPUTS[flavour].read_text() == _generate.render(flavour), (
        "run python -m ndb_transports._generate"
    )


@pytest.mark.parametrize("client", [aio.NdbClient, tr.NdbClient, sync.NdbClient])
def test_every_call_is_a_method_with_the_same_parameters(client: type) -> None:
    for function in calls.SURFACE:
        method = getattr(client, function.__name__)
        wanted = list(inspect.signature(function).parameters)
        got = list(inspect.signature(method).parameters)
        assert got == ["self", *wanted, "timeout"], function.__name__
        assert inspect.iscoroutinefunction(method) is (client is not sync.NdbClient)


def test_session_and_response_error_are_importable_from_every_flavour() -> None:
    from ndb_proto import ResponseError
    from ndb_proto import Session as CoreSession

    for module in (aio, tr, sync):
        assert module.ResponseError is ResponseError
        assert issubclass(module.Session, CoreSession)
