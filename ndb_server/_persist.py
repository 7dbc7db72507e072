"""Datasets on disk, in the layout NemesisDB 0.7.4 writes and reads (docs/protocol.md §7.13, §7.14).

A dataset called ``<name>`` lives in ``<root>/<name>/<T>/`` where ``<T>`` is a wall-clock
nanosecond count; a load picks the largest ``<T>``. Each ``<T>`` holds ``md/md.json``
(``{"complete":ms,"name":..,"saveDataType":0|1,"start":ms,"status":1,"version":2}``) and
``data/0``, ``data/1``, ...: JSON texts, a new one started once the current one reaches
``DATA_FILE_TARGET_BYTES``. KV data files are ``{"keys":{...}}``; session data files are arrays of
``{"keys":{...},"sh":{"expiry":{...},"shared":b,"tkn":u64}}``. No data file is written when there
is nothing to save.

Differences from the server, all deliberate:

* key names are JSON-escaped when written (the server writes them raw, so a key containing
  ``"`` or ``\\`` makes its dataset unloadable);
* a save is atomic: ``<T>`` is built under ``<root>/.ndb-staging/`` (outside ``<root>/<name>``,
  where a non-numeric directory would break a real server's load), data files first, then
  ``md.json``, each fsynced, and only then renamed to ``<root>/<name>/<T>``. A crash or error leaves
  either no new ``<T>`` or a complete one, never a partial one;
* names that would leave ``<root>`` (see ``is_safe_name``) are refused before touching the disk.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

from ndb_server._wirejson import JsonInvalid, dumps_bytes, parse

__all__ = [
    "DATA_FILE_TARGET_BYTES",
    "KV_DATA",
    "SESSION_DATA",
    "STAGING_DIR",
    "DatasetBroken",
    "DatasetMissing",
    "SaveFailed",
    "data_files",
    "is_safe_name",
    "kv_data_files",
    "read_data_file",
    "save_dataset",
    "session_data_files",
]

KV_DATA: Final = 0
SESSION_DATA: Final = 1
DATA_FILE_TARGET_BYTES: Final = 10 * 1024 * 1024
"""A data file is closed once it holds at least this many bytes (the server uses ~10 MiB)."""
STAGING_DIR: Final = ".ndb-staging"
"""Directory under the root where a save is assembled before it is renamed into place."""
_METADATA_VERSION: Final = 2


class SaveFailed(Exception):
    """A save did not complete; ``status`` is 122 (metadata/directories) or 123 (data)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class DatasetMissing(Exception):
    """A load pre-check failed: the server answers ``{"name":..,"st":142}``."""


class DatasetBroken(Exception):
    """The server would throw during the load pre-checks (reply status 1000)."""


def is_safe_name(name: str) -> bool:
    """True when ``name`` is one plain directory name inside the root.

    Refused: ``""``, ``"."``, ``".."``, anything with ``/``, ``\\`` or NUL (which covers absolute
    paths and ``..`` components) and the staging directory's own name.
    """
    if name in ("", ".", "..", STAGING_DIR):
        return False
    return not any(char in name for char in "/\\\0")


def _chunked(pieces: Iterable[bytes], opening: bytes, closing: bytes) -> Iterator[bytes]:
    """Join ``pieces`` with commas into files of about ``DATA_FILE_TARGET_BYTES`` each."""
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece) + 1
        if size >= DATA_FILE_TARGET_BYTES:
            yield opening + b",".join(batch) + closing
            batch, size = [], 0
    if batch:
        yield opening + b",".join(batch) + closing


def kv_data_files(store: dict[str, object]) -> Iterator[bytes]:
    """The data files of a KV dataset holding ``store``."""
    pieces = (dumps_bytes(name) + b":" + dumps_bytes(value) for name, value in store.items())
    return _chunked(pieces, b'{"keys":{', b"}}")


def session_data_files(records: Iterable[dict[str, object]]) -> Iterator[bytes]:
    """The data files of a session dataset holding ``records``."""
    return _chunked((dumps_bytes(record) for record in records), b"[", b"]")


def _write_file(path: Path, content: bytes) -> None:
    """Create ``path`` holding ``content`` and flush it to stable storage."""
    with open(path, "xb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_stamp(name: str) -> bool:
    """True for a ``<T>`` directory name: ASCII digits only."""
    return name.isascii() and name.isdigit()


def _next_stamp(parent: Path, candidate: int) -> int:
    """``candidate``, raised above every existing ``<T>`` so the new save is the newest."""
    newest = max((int(entry) for entry in os.listdir(parent) if _is_stamp(entry)), default=-1)
    return max(candidate, newest + 1)


def save_dataset(
    root: Path,
    name: str,
    data_type: int,
    files: Iterable[bytes],
    wallclock_ns: Callable[[], int],
) -> None:
    """Write a complete dataset atomically; raise ``SaveFailed`` (122/123) when that fails."""
    start_ns = wallclock_ns()
    try:
        staging = root / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        # A plain mkdir (not mkdtemp's 0700) so the finished <T> gets the usual umask-based mode.
        work = staging / f"{start_ns}-{os.getpid()}-{secrets.token_hex(4)}"
        work.mkdir()
    except OSError as exc:
        raise SaveFailed(122) from exc
    try:
        md_dir, data_dir = work / "md", work / "data"
        try:
            md_dir.mkdir()
            data_dir.mkdir()
        except OSError as exc:
            raise SaveFailed(122) from exc
        try:
            for index, content in enumerate(files):
                _write_file(data_dir / str(index), content)
            _fsync_dir(data_dir)
        except OSError as exc:
            raise SaveFailed(123) from exc
        metadata = {
            "complete": wallclock_ns() // 1_000_000,
            "name": name,
            "saveDataType": data_type,
            "start": start_ns // 1_000_000,
            "status": 1,
            "version": _METADATA_VERSION,
        }
        try:
            _write_file(md_dir / "md.json", dumps_bytes(metadata))
            _fsync_dir(md_dir)
            _fsync_dir(work)
        except OSError as exc:
            raise SaveFailed(122) from exc
        try:
            target_parent = root / name
            target_parent.mkdir(exist_ok=True)
            os.rename(work, target_parent / str(_next_stamp(target_parent, start_ns)))
            _fsync_dir(target_parent)
            _fsync_dir(root)
        except OSError as exc:
            raise SaveFailed(123) from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def data_files(root: Path | None, name: str) -> list[Path]:
    """Run the server's load pre-checks; return the newest save's data files in order.

    Raises ``DatasetMissing`` (reply 142 with ``name``) or ``DatasetBroken`` (reply 1000).
    """
    if name == "":
        raise DatasetBroken("the persist root itself is not a dataset")
    if root is None or not is_safe_name(name):
        raise DatasetMissing(name)
    base = root / name
    try:
        entries = [entry for entry in os.scandir(base) if entry.is_dir()]
    except OSError as exc:
        raise DatasetMissing(name) from exc
    if not entries:
        raise DatasetMissing(name)
    if not all(_is_stamp(entry.name) for entry in entries):
        raise DatasetBroken(f"{base} holds a non-numeric directory")
    newest = base / max(entries, key=lambda entry: int(entry.name)).name
    metadata_file, data_dir = newest / "md" / "md.json", newest / "data"
    if not metadata_file.is_file() or not data_dir.is_dir():
        raise DatasetMissing(name)
    try:
        metadata = parse(metadata_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, JsonInvalid) as exc:
        raise DatasetBroken(f"{metadata_file} is not JSON") from exc
    if not isinstance(metadata, dict) or "saveDataType" not in metadata:
        raise DatasetMissing(name)
    status = metadata.get("status")
    if type(status) is not int or status != 1:
        raise DatasetMissing(name)
    files = [path for path in data_dir.iterdir() if path.is_file()]
    return sorted(files, key=_data_file_order)


def _data_file_order(path: Path) -> tuple[int, int, str]:
    return (0, int(path.name), "") if _is_stamp(path.name) else (1, 0, path.name)


def read_data_file(path: Path) -> object:
    """Parse one data file; raise ``ValueError`` (including ``JsonInvalid``) or ``OSError``."""
    return parse(path.read_text(encoding="utf-8"))
