"""The documentation's examples run as printed and print what the pages say they print.

A getting-started page marks a runnable example with ``<!-- example -->`` on the line before its
fenced ``python`` block, and may follow it with ``<!-- output -->`` and a fenced ``text`` block
holding the exact output. Each example starts its own embedded server, so it is run here as a
reader would run it, in this process, with its standard output captured.

A block marked ``<!-- pytest-example -->`` (the embedded server page) is a test module: its test
functions are called with the real fixtures they name.
"""

from __future__ import annotations

import inspect
import re
import unittest
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import ndb_proto

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = DOCS / "getting-started"
EXAMPLE = re.compile(
    r"<!-- example -->\n```python\n(?P<code>.*?)```\n"
    r"(?:(?:(?!```).)*?<!-- output -->\n```text\n(?P<output>.*?)```)?",
    re.S,
)
FENCED_PYTHON = re.compile(r"^```python$", re.M)


def examples() -> list[tuple[Path, str, str | None]]:
    """(page, code, expected output or None) for every marked example, in page order."""
    return [
        (page, match["code"], match["output"])
        for page in sorted(PAGES.glob("*.md"))
        for match in EXAMPLE.finditer(page.read_text("utf-8"))
    ]


def example_ids() -> list[str]:
    """``asyncio-1``, ``asyncio-2``, ...: the page and the example's place on it."""
    seen: Counter[str] = Counter()
    ids = []
    for page, _, _ in examples():
        seen[page.stem] += 1
        ids.append(f"{page.stem}-{seen[page.stem]}")
    return ids


def test_every_getting_started_page_has_examples() -> None:
    pages = {page.stem for page in PAGES.glob("*.md")}
    with_examples = {page.stem for page, _, _ in examples()}
    assert pages == with_examples == {"asyncio", "trio", "sync"}


@pytest.mark.parametrize("page", sorted(PAGES.glob("*.md")), ids=lambda page: page.stem)
def test_every_python_block_is_a_checked_example(page: Path) -> None:
    text = page.read_text("utf-8")
    marked = len(re.findall(r"<!-- example -->\n```python$", text, re.M))
    assert marked == len(FENCED_PYTHON.findall(text))


@pytest.mark.parametrize(
    ("page", "code", "output"),
    examples(),
    ids=example_ids(),
)
def test_example_runs_and_prints_what_the_page_shows(
    page: Path, code: str, output: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(code, str(page), "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    if output is not None:
        assert printed == output


def pytest_examples() -> list[str]:
    text = (DOCS / "embedded-server.md").read_text("utf-8")
    return re.findall(r"<!-- pytest-example -->\n```python\n(.*?)```", text, re.S)


def test_the_embedded_server_page_has_a_fixture_example() -> None:
    assert len(pytest_examples()) == 1


@pytest.mark.parametrize("code", pytest_examples())
def test_fixture_example_passes_with_the_real_fixtures(
    code: str, request: pytest.FixtureRequest
) -> None:
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    exec(compile(code, "embedded-server.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test(**{name: request.getfixturevalue(name) for name in inspect.signature(test).parameters})


def test_the_api_reference_lists_every_core_module() -> None:
    """A module added to ndb_proto must get its section in the API reference."""
    package = Path(ndb_proto.__file__).parent  # the checkout's, or the installed package's
    modules = {path.stem for path in package.glob("*.py") if not path.stem.startswith("_")}
    page = (DOCS / "reference" / "ndb_proto.md").read_text("utf-8")
    listed = set(re.findall(r"^::: ndb_proto\.(\w+)$", page, re.M))
    assert listed == modules


def examples_of_the_testing_page() -> list[str]:
    text = (DOCS / "testing.md").read_text("utf-8")
    return re.findall(r"<!-- pytest-example -->\n```python\n(.*?)```", text, re.S)


def test_every_python_block_of_the_testing_page_is_run() -> None:
    text = (DOCS / "testing.md").read_text("utf-8")
    assert len(examples_of_the_testing_page()) == len(FENCED_PYTHON.findall(text)) == 8


@pytest.mark.parametrize("code", examples_of_the_testing_page())
def test_testing_page_example_passes(code: str, request: pytest.FixtureRequest) -> None:
    """Each block's test functions run with the real fixtures they name, and its hypothesis
    state machines (``TestX = Machine.TestCase``) run as unittest cases."""
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    exec(compile(code, "testing.md", "exec"), namespace)
    functions = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    cases = [
        v
        for k, v in namespace.items()
        if k.startswith("Test") and isinstance(v, type) and issubclass(v, unittest.TestCase)
    ]
    assert functions or cases
    for test in functions:
        test(**{name: request.getfixturevalue(name) for name in inspect.signature(test).parameters})
    for case in cases:
        result = unittest.TestResult()
        unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
        assert result.wasSuccessful(), result.errors + result.failures
