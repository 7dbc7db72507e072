"""KV_SAVE/KV_LOAD/SH_SAVE/SH_LOAD: disk layout, round trips, compatibility and atomicity."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ndb_server import Engine, _persist

_T0 = 1_795_409_407_664_384_574


class _Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def _engine(root: Path | None, wallclock: int = _T0, token: int = 2**63 + 1) -> Engine:
    tokens = itertools.count(token)
    return Engine(
        clock=_Clock(),
        persist_dir=root,
        token_source=lambda: next(tokens),
        wallclock_ns=lambda: wallclock,
    )


def _call(engine: Engine, request: object) -> Any:
    text = json.dumps(request, separators=(",", ":"), ensure_ascii=False)
    return json.loads(engine.handle_text(text))


_AWKWARD_KEYS = {
    'quote"d': 1,
    "back\\slash": [1, "\\"],
    "": "empty key",
    "ünï/cödé 日本 😀": {"nested": {"z": None, "a": 1e20}},
    "ctrl\n\t\u0001": -7,
    "big": 18446744073709551615,
    "float": 1000.0,
}


def _tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_kv_round_trip_and_layout(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    assert engine.persist_enabled
    _call(engine, {"KV_SET": {"keys": _AWKWARD_KEYS}})
    assert _call(engine, {"KV_SAVE": {"name": "ds"}}) == {
        "KV_SAVE_RSP": {"duration": 0, "name": "ds", "st": 121}
    }
    stamp = tmp_path / "ds" / str(_T0)
    assert [p for p in _tree(tmp_path) if not p.startswith(_persist.STAGING_DIR)] == [
        "ds",
        f"ds/{_T0}",
        f"ds/{_T0}/data",
        f"ds/{_T0}/data/0",
        f"ds/{_T0}/md",
        f"ds/{_T0}/md/md.json",
    ]
    assert list((tmp_path / _persist.STAGING_DIR).iterdir()) == []
    metadata = json.loads((stamp / "md" / "md.json").read_text())
    assert metadata == {
        "complete": _T0 // 1_000_000,
        "name": "ds",
        "saveDataType": 0,
        "start": _T0 // 1_000_000,
        "status": 1,
        "version": 2,
    }
    data = json.loads((stamp / "data" / "0").read_text(encoding="utf-8"))
    assert data == {"keys": _AWKWARD_KEYS}

    fresh = _engine(tmp_path)
    _call(fresh, {"KV_SET": {"keys": {"big": "overwritten", "other": True}}})
    assert _call(fresh, {"KV_LOAD": {"name": "ds"}}) == {
        "KV_LOAD_RSP": {"duration": 0, "keys": 7, "name": "ds", "sessions": 0, "st": 141}
    }
    got = _call(fresh, {"KV_GET": {"keys": [*_AWKWARD_KEYS, "other"]}})
    assert got == {"KV_GET_RSP": {"keys": {**_AWKWARD_KEYS, "other": True}, "st": 1}}


def test_newest_save_wins_even_with_the_same_wall_clock(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _call(engine, {"KV_SET": {"keys": {"v": 1}}})
    _call(engine, {"KV_SAVE": {"name": "ds"}})
    _call(engine, {"KV_SET": {"keys": {"v": 2}}})
    _call(engine, {"KV_SAVE": {"name": "ds"}})
    assert sorted(os.listdir(tmp_path / "ds")) == [str(_T0), str(_T0 + 1)]
    fresh = _engine(tmp_path)
    _call(fresh, {"KV_LOAD": {"name": "ds"}})
    assert _call(fresh, {"KV_GET": {"keys": ["v"]}}) == {"KV_GET_RSP": {"keys": {"v": 2}, "st": 1}}


def test_large_datasets_are_split_into_several_data_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_persist, "DATA_FILE_TARGET_BYTES", 100)
    keys = {f"key{i:03}": "v" * 30 for i in range(40)}
    engine = _engine(tmp_path)
    _call(engine, {"KV_SET": {"keys": keys}})
    _call(engine, {"KV_SAVE": {"name": "big"}})
    files = sorted((tmp_path / "big" / str(_T0) / "data").iterdir(), key=lambda p: int(p.name))
    assert [p.name for p in files] == [str(i) for i in range(len(files))]
    assert len(files) > 5
    merged: dict[str, object] = {}
    for path in files:
        merged.update(json.loads(path.read_text())["keys"])
    assert merged == keys
    fresh = _engine(tmp_path)
    assert _call(fresh, {"KV_LOAD": {"name": "big"}})["KV_LOAD_RSP"]["keys"] == 40
    assert _call(fresh, {"KV_GET": {"keys": list(keys)}}) == {"KV_GET_RSP": {"keys": keys, "st": 1}}


def test_sh_round_trip(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    plain = _call(engine, {"SH_NEW": {}})["SH_NEW_RSP"]["tkn"]
    timed = _call(
        engine,
        {"SH_NEW": {"expiry": {"duration": 90, "deleteSession": True, "extendOnGet": True}}},
    )["SH_NEW_RSP"]["tkn"]
    _call(engine, {"SH_SET": {"tkn": plain, "keys": _AWKWARD_KEYS}})
    _call(engine, {"SH_SET": {"tkn": timed, "keys": {"k": "v"}}})
    assert _call(engine, {"SH_SAVE": {"name": "s"}})["SH_SAVE_RSP"]["st"] == 121
    records = json.loads((tmp_path / "s" / str(_T0) / "data" / "0").read_text(encoding="utf-8"))
    assert sorted(records, key=lambda r: r["sh"]["tkn"]) == [
        {
            "keys": _AWKWARD_KEYS,
            "sh": {
                "expiry": {
                    "deleteSession": False,
                    "duration": 0,
                    "extendOnGet": False,
                    "extendOnSetAdd": False,
                },
                "shared": False,
                "tkn": plain,
            },
        },
        {
            "keys": {"k": "v"},
            "sh": {
                "expiry": {
                    "deleteSession": True,
                    "duration": 90,
                    "extendOnGet": True,
                    "extendOnSetAdd": False,
                },
                "shared": False,
                "tkn": timed,
            },
        },
    ]
    fresh = _engine(tmp_path, token=7)
    assert _call(fresh, {"SH_LOAD": {"name": "s"}}) == {
        "SH_LOAD_RSP": {"keys": 8, "name": "s", "sessions": 2, "st": 141}
    }
    got = _call(fresh, {"SH_GET": {"tkn": plain, "keys": list(_AWKWARD_KEYS)}})
    assert got == {"SH_GET_RSP": {"keys": _AWKWARD_KEYS, "st": 1}}
    info = _call(fresh, {"SH_INFO": {"tkn": timed}})["SH_INFO_RSP"]
    assert info["expiry"] == {
        "deleteSession": True,
        "duration": 90,
        "extendOnGet": True,
        "extendOnSetAdd": False,
        "remaining": 90,
    }
    # Loading again touches nothing: every session exists.
    assert _call(fresh, {"SH_LOAD": {"name": "s"}}) == {
        "SH_LOAD_RSP": {"keys": 0, "name": "s", "sessions": 0, "st": 141}
    }


def _write_foreign_dataset(root: Path, name: str, stamp: int, md: str, files: list[str]) -> None:
    """Lay out a dataset by hand, the way a real NemesisDB 0.7.4 writes it."""
    base = root / name / str(stamp)
    (base / "md").mkdir(parents=True)
    (base / "data").mkdir()
    (base / "md" / "md.json").write_text(md, encoding="utf-8")
    for index, content in enumerate(files):
        (base / "data" / str(index)).write_text(content, encoding="utf-8")


def test_datasets_written_by_a_real_server_load(tmp_path: Path) -> None:
    kv_md = (
        '{"complete":1700000000123,"name":"real","saveDataType":0,'
        '"start":1700000000120,"status":1,"version":2}'
    )
    _write_foreign_dataset(tmp_path, "real", 1700000000120000000, kv_md, ['{ "keys":{"old":1}}'])
    _write_foreign_dataset(
        tmp_path,
        "real",
        1700000000999000000,
        kv_md,
        ['{ "keys":{"a":1,"b":{"c":[1,2]}}}', '{ "keys":{"d":"é"}}'],
    )
    engine = _engine(tmp_path)
    assert _call(engine, {"KV_LOAD": {"name": "real"}})["KV_LOAD_RSP"]["keys"] == 3
    got = _call(engine, {"KV_GET": {"keys": ["a", "b", "d", "old"]}})
    assert got == {"KV_GET_RSP": {"keys": {"a": 1, "b": {"c": [1, 2]}, "d": "é"}, "st": 1}}

    sh_md = kv_md.replace('"saveDataType":0', '"saveDataType":1').replace("real", "realsh")
    record = (
        '[{"keys":{"x":1},"sh":{"expiry":{"deleteSession":false,"duration":30,'
        '"extendOnGet":false,"extendOnSetAdd":true},"shared":false,"tkn":10639132512368373105}}]'
    )
    _write_foreign_dataset(tmp_path, "realsh", 1700000000120000000, sh_md, [record])
    assert _call(engine, {"SH_LOAD": {"name": "realsh"}}) == {
        "SH_LOAD_RSP": {"keys": 1, "name": "realsh", "sessions": 1, "st": 141}
    }
    assert _call(engine, {"SH_GET": {"tkn": 10639132512368373105, "keys": ["x"]}}) == {
        "SH_GET_RSP": {"keys": {"x": 1}, "st": 1}
    }


_MD = '{"complete":1,"name":"x","saveDataType":0,"start":1,"status":1,"version":2}'
_KV_EMPTY = {"KV_LOAD_RSP": {"duration": 0, "keys": 0, "name": "x", "sessions": 0, "st": 140}}


@pytest.mark.parametrize(
    ("md", "files", "kv_reply", "sh_reply"),
    [
        (_MD, [], _KV_EMPTY,
         {"SH_LOAD_RSP": {"keys": 0, "name": "x", "sessions": 0, "st": 142}}),
        (_MD.replace('"status":1', '"status":0'), ['{"keys":{"a":1}}'],
         {"KV_LOAD_RSP": {"name": "x", "st": 142}}, {"SH_LOAD_RSP": {"name": "x", "st": 142}}),
        (_MD.replace('"status":1', '"status":"1"'), ['{"keys":{"a":1}}'],
         {"KV_LOAD_RSP": {"name": "x", "st": 142}}, {"SH_LOAD_RSP": {"name": "x", "st": 142}}),
        (_MD.replace('"saveDataType":0,', ""), ['{"keys":{"a":1}}'],
         {"KV_LOAD_RSP": {"name": "x", "st": 142}}, {"SH_LOAD_RSP": {"name": "x", "st": 142}}),
        ("{not json", ['{"keys":{"a":1}}'],
         {"ERR": {"m": "", "st": 1000}}, {"SH_LOAD_RSP": {"m": "", "st": 1000, "tkn": None}}),
        (_MD, ['{"keys":{"a":1}}', '{"keys":{"b":', '{"keys":{"c":1}}'],
         {"KV_LOAD_RSP": {"duration": 0, "keys": 1, "name": "x", "sessions": 0, "st": 142}},
         {"SH_LOAD_RSP": {"keys": 0, "name": "x", "sessions": 0, "st": 142}}),
        (_MD, ["[]"],
         {"KV_LOAD_RSP": {"duration": 0, "keys": 0, "name": "x", "sessions": 0, "st": 141}},
         {"SH_LOAD_RSP": {"keys": 0, "name": "x", "sessions": 0, "st": 141}}),
    ],
)  # fmt: skip
def test_load_prechecks_and_corrupt_data(
    tmp_path: Path, md: str, files: list[str], kv_reply: object, sh_reply: object
) -> None:
    _write_foreign_dataset(tmp_path, "x", 5, md, files)
    engine = _engine(tmp_path)
    assert _call(engine, {"KV_LOAD": {"name": "x"}}) == kv_reply
    assert _call(engine, {"SH_LOAD": {"name": "x"}}) == sh_reply


def test_corrupt_data_keeps_keys_loaded_before_it(tmp_path: Path) -> None:
    _write_foreign_dataset(
        tmp_path, "x", 5, _MD, ['{"keys":{"a":1}}', "{broken", '{"keys":{"c":1}}']
    )
    engine = _engine(tmp_path)
    _call(engine, {"KV_LOAD": {"name": "x"}})
    assert _call(engine, {"KV_KEYS": {}}) == {"KV_KEYS_RSP": {"keys": ["a"], "st": 1}}


def test_broken_dataset_directories(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    (tmp_path / "empty").mkdir()
    assert _call(engine, {"KV_LOAD": {"name": "empty"}}) == {
        "KV_LOAD_RSP": {"name": "empty", "st": 142}
    }
    _write_foreign_dataset(tmp_path, "odd", 5, _MD, ['{"keys":{"a":1}}'])
    (tmp_path / "odd" / "notanumber").mkdir()
    assert _call(engine, {"KV_LOAD": {"name": "odd"}}) == {"ERR": {"m": "", "st": 1000}}
    (tmp_path / "nodata" / "5" / "md").mkdir(parents=True)
    (tmp_path / "nodata" / "5" / "md" / "md.json").write_text(_MD)
    assert _call(engine, {"SH_LOAD": {"name": "nodata"}}) == {
        "SH_LOAD_RSP": {"name": "nodata", "st": 142}
    }


def test_load_ignores_the_metadata_type(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _call(engine, {"KV_SET": {"keys": {"a": 1}}})
    _call(engine, {"KV_SAVE": {"name": "kv"}})
    token = _call(engine, {"SH_NEW": {}})["SH_NEW_RSP"]["tkn"]
    _call(engine, {"SH_SET": {"tkn": token, "keys": {"b": 1}}})
    _call(engine, {"SH_SAVE": {"name": "sh"}})
    fresh = _engine(tmp_path)
    assert _call(fresh, {"KV_LOAD": {"name": "sh"}})["KV_LOAD_RSP"] == {
        "duration": 0, "keys": 0, "name": "sh", "sessions": 0, "st": 141
    }  # fmt: skip
    assert _call(fresh, {"SH_LOAD": {"name": "kv"}})["SH_LOAD_RSP"] == {
        "keys": 0, "name": "kv", "sessions": 0, "st": 142
    }  # fmt: skip


def test_sh_save_selected_tokens(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    first = _call(engine, {"SH_NEW": {}})["SH_NEW_RSP"]["tkn"]
    second = _call(engine, {"SH_NEW": {}})["SH_NEW_RSP"]["tkn"]
    request = {"SH_SAVE": {"name": "sel", "tkns": [second, 12345, second]}}
    assert _call(engine, request)["SH_SAVE_RSP"]["st"] == 121
    _call(engine, {"SH_END_ALL": {}})
    assert _call(engine, {"SH_LOAD": {"name": "sel"}})["SH_LOAD_RSP"]["sessions"] == 1
    assert _call(engine, {"SH_EXISTS": {"tkns": [first, second]}}) == {
        "SH_EXISTS_RSP": {"exist": [second], "st": 1}
    }
    bad = {"SH_SAVE": {"name": "sel", "tkns": [1, -1]}}
    assert _call(engine, bad) == {
        "SH_SAVE_RSP": {"m": "'tkns' contains invalid token", "st": 41, "tkn": None}
    }


def test_loading_without_persistence_reports_a_missing_dataset(tmp_path: Path) -> None:
    engine = _engine(None)
    assert not engine.persist_enabled
    assert _call(engine, {"KV_LOAD": {"name": "ds"}}) == {"KV_LOAD_RSP": {"name": "ds", "st": 142}}
    assert _call(engine, {"SH_LOAD": {"name": "ds"}}) == {"SH_LOAD_RSP": {"name": "ds", "st": 142}}
    assert _call(engine, {"KV_LOAD": {"name": ""}}) == {"ERR": {"m": "", "st": 1000}}


_REFUSED = ["", ".", "..", "a/b", "../escape", "/abs", "a\\b", "..\\x", "nul\0", ".ndb-staging"]


@pytest.mark.parametrize("name", _REFUSED)
def test_names_that_would_escape_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "persist"
    root.mkdir()
    engine = _engine(root)
    _call(engine, {"KV_SET": {"keys": {"a": 1}}})
    _call(engine, {"SH_NEW": {}})
    assert _call(engine, {"KV_SAVE": {"name": name}}) == {"KV_SAVE_RSP": {"name": name, "st": 122}}
    assert _call(engine, {"SH_SAVE": {"name": name}}) == {"SH_SAVE_RSP": {"name": name, "st": 122}}
    if name == "":
        assert _call(engine, {"KV_LOAD": {"name": name}}) == {"ERR": {"m": "", "st": 1000}}
        assert _call(engine, {"SH_LOAD": {"name": name}}) == {
            "SH_LOAD_RSP": {"m": "", "st": 1000, "tkn": None}
        }
    else:
        assert _call(engine, {"KV_LOAD": {"name": name}}) == {
            "KV_LOAD_RSP": {"name": name, "st": 142}
        }
        assert _call(engine, {"SH_LOAD": {"name": name}}) == {
            "SH_LOAD_RSP": {"name": name, "st": 142}
        }
    assert _tree(tmp_path) == ["persist"]


class _Boom(OSError):
    pass


def _fail_on_write(monkeypatch: pytest.MonkeyPatch, failing_call: int) -> None:
    """Make the ``failing_call``-th file write of the next save raise after writing half."""
    real_write = _persist._write_file
    calls = itertools.count(1)

    def write(path: Path, content: bytes) -> None:
        if next(calls) == failing_call:
            real_write(path, content[: len(content) // 2])
            raise _Boom(f"disk full writing {path}")
        real_write(path, content)

    monkeypatch.setattr(_persist, "_write_file", write)


@pytest.mark.parametrize(("failing_call", "status"), [(1, 123), (4, 123), (7, 122)])
def test_a_failed_save_leaves_the_previous_dataset_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int, status: int
) -> None:
    monkeypatch.setattr(_persist, "DATA_FILE_TARGET_BYTES", 1)  # one key per data file
    keys = {f"k{i}": "x" * 40 for i in range(5)}
    first = _engine(tmp_path)
    _call(first, {"KV_SET": {"keys": keys}})
    assert _call(first, {"KV_SAVE": {"name": "ds"}})["KV_SAVE_RSP"]["st"] == 121
    before = _tree(tmp_path)

    second = _engine(tmp_path, wallclock=_T0 + 10**9)
    _call(second, {"KV_SET": {"keys": {**keys, "k0": "changed", "new": 1}}})
    _fail_on_write(monkeypatch, failing_call)
    reply = _call(second, {"KV_SAVE": {"name": "ds"}})["KV_SAVE_RSP"]
    assert reply["st"] == status
    assert reply["name"] == "ds"
    assert ("duration" in reply) == (status == 123)
    assert _tree(tmp_path) == before  # no partial <T>, nothing left in the staging area
    monkeypatch.undo()

    loader = _engine(tmp_path)
    assert _call(loader, {"KV_LOAD": {"name": "ds"}})["KV_LOAD_RSP"]["st"] == 141
    assert _call(loader, {"KV_GET": {"keys": [*keys, "new"]}}) == {  # the first save, whole
        "KV_GET_RSP": {"keys": keys, "st": 1}
    }


def test_a_failed_first_save_leaves_no_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    token = _call(engine, {"SH_NEW": {}})["SH_NEW_RSP"]["tkn"]
    _call(engine, {"SH_SET": {"tkn": token, "keys": {"a": 1}}})
    _fail_on_write(monkeypatch, 1)
    assert _call(engine, {"SH_SAVE": {"name": "s"}}) == {
        "SH_SAVE_RSP": {"duration": 0, "name": "s", "st": 123}
    }
    assert _call(engine, {"SH_LOAD": {"name": "s"}}) == {"SH_LOAD_RSP": {"name": "s", "st": 142}}


def test_a_crash_mid_save_leaves_no_partial_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    _call(engine, {"KV_SET": {"keys": {"a": 1}}})

    def crash(path: Path, content: bytes) -> None:
        path.write_bytes(content[:3])
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(_persist, "_write_file", crash)
    assert _call(engine, {"KV_SAVE": {"name": "ds"}}) == {"ERR": {"m": "", "st": 1000}}
    assert [p for p in _tree(tmp_path) if not p.startswith(_persist.STAGING_DIR)] == []
    assert _call(engine, {"KV_LOAD": {"name": "ds"}}) == {"KV_LOAD_RSP": {"name": "ds", "st": 142}}
