"""``ndb_proto`` is sans-IO: no sockets, no event loops, no threads, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ndb_proto

PACKAGE = Path(ndb_proto.__file__).resolve().parent
MODULES = sorted(PACKAGE.glob("*.py"))
FORBIDDEN_MODULES = {
    "socket", "ssl", "select", "selectors", "asyncio", "trio", "anyio", "threading",
    "_thread", "multiprocessing", "concurrent", "time", "subprocess",
}  # fmt: skip
FORBIDDEN_CALLS = {"sleep", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}


def imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            roots.add("<dynamic import>")
    return roots


def clock_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            found.append(func.id)
        elif isinstance(func, ast.Attribute):
            if func.attr in FORBIDDEN_CALLS:
                found.append(func.attr)
            if (
                func.attr in ("time", "time_ns", "now", "utcnow")
                and isinstance(func.value, (ast.Name, ast.Attribute))
                and (getattr(func.value, "id", None) or getattr(func.value, "attr", None))
                in ("time", "datetime", "date")
            ):
                found.append(ast.unparse(func))
    return found


def test_every_module_is_checked() -> None:
    names = {path.stem for path in MODULES}
    assert {"client", "pipeline", "channel", "codec", "calls", "reconnect"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_module_does_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert imported_roots(tree) & FORBIDDEN_MODULES == set()
    assert "<dynamic import>" not in imported_roots(tree)
    assert clock_calls(tree) == []


def test_the_checker_finds_what_it_looks_for() -> None:
    bad = ast.parse(
        "import socket\nfrom time import monotonic\nimport asyncio.events\n"
        "time.time()\nx.sleep(1)\nperf_counter()\ndatetime.now()\n__import__('ssl')\n"
    )
    assert {"socket", "time", "asyncio", "<dynamic import>"} <= imported_roots(bad)
    assert clock_calls(bad) == ["time.time", "sleep", "perf_counter", "datetime.now"]
    assert imported_roots(ast.parse("from . import client\nfrom .time import x")) == set()
