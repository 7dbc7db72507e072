"""TLS options of ``ndb``: a private CA, verification that cannot be skipped, client certs."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from ndb_server.thread import ServerThread
from tests.cli.helpers import run_ndb
from tests.transports.proxy import Proxy


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, *, require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


def test_a_private_ca_is_trusted_with_cafile(
    ndb_server: ServerThread, ca: trustme.CA, ca_file: str
) -> None:
    with Proxy.for_url(ndb_server.url, tls=server_context(ca)) as proxy:
        url = proxy.url  # wss://
        trusted = run_ndb("--cafile", ca_file, "--tls", "kv_count", url=url)
        assert (trusted.status, trusted.out) == (0, "0\n")
        unverified = run_ndb("kv_count", url=url)  # the system CAs do not know the test CA
        assert unverified.status == 3


def test_tls_refuses_a_plain_url(ndb_server: ServerThread) -> None:
    with Proxy.for_url(ndb_server.url) as proxy:
        result = run_ndb("--tls", "kv_count", url=proxy.url)
        assert result.status == 2
        assert "--url" in result.err
        assert proxy.accepted == []


def test_client_certificate(
    ndb_server: ServerThread, ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    client_pem = tmp_path / "client.pem"
    ca.issue_cert("ndb-cli-test").private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    context = server_context(ca, require_client_cert=True)
    with Proxy.for_url(ndb_server.url, tls=context) as proxy:
        url = proxy.url  # wss://
        without = run_ndb("--cafile", ca_file, "kv_count", url=url)
        assert without.status == 3
        with_cert = run_ndb("--cafile", ca_file, "--certfile", str(client_pem), "kv_count", url=url)
        assert (with_cert.status, with_cert.out) == (0, "0\n")


@pytest.mark.parametrize(
    ("option", "kind"),
    [
        ("--cafile", "missing"),
        ("--cafile", "not-pem"),
        ("--certfile", "missing"),
        ("--certfile", "not-pem"),
    ],
)
def test_an_unusable_tls_file_is_a_usage_error_naming_the_option(
    tmp_path: Path, option: str, kind: str
) -> None:
    path = tmp_path / "file.pem"
    if kind == "not-pem":
        path.write_text("not a certificate\n")
    with Proxy(None, mode="blackhole") as proxy:
        result = run_ndb(option, str(path), "kv_count", url=proxy.url)
        assert proxy.accepted == []  # nothing was tried
    assert result.status == 2
    assert result.err.startswith(f"ndb: {option}")


def test_keyfile_without_certfile_is_a_usage_error(tmp_path: Path, ca: trustme.CA) -> None:
    key = tmp_path / "key.pem"
    ca.issue_cert("ndb-cli-test").private_key_pem.write_to_path(str(key))
    result = run_ndb("--keyfile", str(key), "kv_count", url="ws://127.0.0.1:9/")
    assert result.status == 2
    assert result.err.startswith("ndb: --keyfile")
