"""The getting-started pages' examples run as printed and print what the pages say they print.

A page marks a runnable example with ``<!-- example -->`` on the line before its fenced
``python`` block, and may follow it with ``<!-- output -->`` and a fenced ``text`` block holding
the exact output. Each example starts its own embedded server, so it is run here as a reader
would run it, in this process, with its standard output captured.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parents[2] / "docs" / "getting-started"
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
