"""What a user of the installed distribution gets: the pytest fixture from the ``pytest11`` entry
point, the three flavours against it, typing markers and one version.

CI copies this file out of the checkout and runs it against the built wheel, installed in a
fresh virtualenv, with ``NDB_EXPECT_INSTALLED=1``: a file missing from the wheel (``py.typed``,
the plugin's entry point, a module) fails here rather than on a user's machine. In the checkout
it runs with the rest of the suite and checks the same behaviour on the editable install.
"""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import metadata
from pathlib import Path

import pytest
import trio

import ndb_proto
import ndb_server as server_package
import ndb_transports
from ndb_proto import ResponseError, Status
from ndb_server.thread import ServerThread
from ndb_transports import asyncio as ndb_asyncio
from ndb_transports import sync as ndb_sync
from ndb_transports import trio as ndb_trio

DISTRIBUTION = "ndb-nemesisdb"
PACKAGES = (ndb_proto, ndb_transports, server_package)


def test_the_fixture_serves_a_blocking_client(ndb_server: ServerThread) -> None:
    with ndb_sync.NdbClient(timeout=5.0) as client:
        assert client.open(ndb_server.url)
        client.kv_set({"flavour": "sync"})
        assert client.kv_get(key="flavour") == "sync"
        with pytest.raises(ResponseError) as info:
            client.sh_get(12345, key="missing")
        assert info.value.status is Status.SESSION_NOT_EXIST


def test_the_fixture_serves_an_asyncio_client(ndb_server: ServerThread) -> None:
    async def main() -> object:
        async with ndb_asyncio.NdbClient(timeout=5.0) as client:
            assert await client.open(ndb_server.url)
            session = await client.sh_create(durationSeconds=60)
            await session.set({"cart": ["book"]})
            return await client.sh_get(session.tkn, key="cart")

    assert asyncio.run(main()) == ["book"]


def test_the_fixture_serves_a_trio_client(ndb_server: ServerThread) -> None:
    async def main() -> object:
        async with ndb_trio.NdbClient(timeout=5.0) as client:
            assert await client.open(ndb_server.url)
            await client.kv_set({"a": 1, "b": 2})
            return await client.kv_count()

    assert trio.run(main) == 2


def test_one_version_everywhere() -> None:
    assert metadata.version(DISTRIBUTION) == ndb_proto.__version__


def test_every_package_is_typed() -> None:
    for package in PACKAGES:
        assert (Path(package.__file__).parent / "py.typed").is_file(), package.__name__


def test_the_fixture_comes_from_the_entry_point() -> None:
    plugins = metadata.entry_points(group="pytest11")
    assert [p.value for p in plugins if p.name == "ndb_server"] == ["ndb_server.pytest_plugin"]


@pytest.mark.skipif(
    os.environ.get("NDB_EXPECT_INSTALLED") != "1", reason="only when testing an installed wheel"
)
def test_the_packages_come_from_the_installed_distribution() -> None:
    site = Path(sys.prefix).resolve()
    files = metadata.files(DISTRIBUTION) or []
    for package in PACKAGES:
        location = Path(package.__file__).resolve()
        assert site in location.parents, f"{package.__name__} imported from {location}"
        assert any(str(f).startswith(f"{package.__name__}/") for f in files), package.__name__
