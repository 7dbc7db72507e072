"""The generated client methods match ``ndb_proto/calls.py`` (no drift), and every flavour has
every method of the surface."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from ndb_proto import calls
from ndb_transports import _derived, _generate, sync
from ndb_transports import asyncio as aio
from ndb_transports import trio as tr
from ndb_transports._options import ClientOptions, SyncOptions


@pytest.mark.parametrize("flavour", list(_generate.OUTPUTS))
def test_generated_files_are_up_to_date(flavour: str) -> None:
    output = _generate.OUTPUTS[flavour]
    if not output.parent.is_dir() and not (_derived.ROOT / "pyproject.toml").is_file():
        # .ci/compiled runs the suite on an installed wheel, which has no docs/ folder.
        pytest.skip("the documentation pages are generated into a checkout, and checked there")
    assert output.read_text() == _generate.render(flavour), "run python -m ndb_transports._generate"


@pytest.mark.parametrize("client", [aio.NdbClient, tr.NdbClient, sync.NdbClient])
def test_every_call_is_a_method_with_the_same_parameters(client: type) -> None:
    for function in calls.SURFACE:
        method = getattr(client, function.__name__)
        wanted = list(inspect.signature(function).parameters)
        got = list(inspect.signature(method).parameters)
        assert got == ["self", *wanted, "timeout"], function.__name__
        assert inspect.iscoroutinefunction(method) is (client is not sync.NdbClient)


@pytest.mark.parametrize("client", [aio.NdbClient, tr.NdbClient, sync.NdbClient])
def test_every_call_is_a_pipeline_method_with_the_same_parameters(client: type) -> None:
    pipeline = client().pipeline()
    for function in calls.SURFACE:
        method = getattr(pipeline, function.__name__)
        wanted = list(inspect.signature(function).parameters)
        assert list(inspect.signature(method).parameters) == wanted, function.__name__
        assert not inspect.iscoroutinefunction(method)


def test_session_and_response_error_are_importable_from_every_flavour() -> None:
    from ndb_proto import ResponseError
    from ndb_proto import Session as CoreSession

    for module in (aio, tr, sync):
        assert module.ResponseError is ResponseError
        assert issubclass(module.Session, CoreSession)


@pytest.mark.parametrize("client", [aio.NdbClient, tr.NdbClient, sync.NdbClient])
def test_every_flavour_takes_every_declared_option_with_its_default(client: type) -> None:
    parameters = inspect.signature(client).parameters
    first, *options = parameters.values()
    assert first.name == "debug" and first.default is False
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD  # NdbClient(True) still works
    # The blocking client's options add its clock to every flavour's (SyncOptions).
    declaration = SyncOptions if client is sync.NdbClient else ClientOptions
    declared = {option.name: option for option in fields(declaration)}
    assert {parameter.name for parameter in options} == set(declared)
    for parameter in options:
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == declared[parameter.name].default
        assert parameter.annotation == declared[parameter.name].type
    built = client(timeout=3.0, max_in_flight=5).options
    assert (built.timeout, built.max_in_flight, built.connect_timeout) == (3.0, 5, 5.0)
