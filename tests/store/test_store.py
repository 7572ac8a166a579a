import json
import os

import pytest

from jobs import errors, store
from jobs.artifacts import commit


def test_plain_path_and_file_uri_are_the_same_store(tmp_path):
    a = store.open_store(str(tmp_path))
    b = store.open_store(tmp_path.as_uri())
    a.write_text("x/y.txt", "hello")
    assert b.read_text("x/y.txt") == "hello"
    assert b.list() == ["x/y.txt"]
    assert a.child("x").list() == ["y.txt"]


@pytest.mark.parametrize("uri", ["", "ftp://host/x", "file://remotehost/x", "s3://"])
def test_unsupported_uris_are_bad_input(uri):
    with pytest.raises(errors.BadInput):
        store.open_store(uri)


def test_dotdot_names_rejected(tmp_path):
    with pytest.raises(errors.BadInput, match="'..'"):
        store.open_store(tmp_path).write_text("../escape", "x")


def test_write_is_atomic_and_leaves_no_temporaries(tmp_path, monkeypatch):
    s = store.open_store(tmp_path)
    s.write_text("obj", "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        s.write_text("obj", "new")
    monkeypatch.undo()
    assert s.read_text("obj") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj"]


def test_missing_object_is_a_store_error(tmp_path):
    with pytest.raises(errors.StoreError, match="no such object"):
        store.open_store(tmp_path).read_bytes("nope")


def test_split_object_uri(tmp_path):
    s, name = store.split_object_uri(str(tmp_path / "a.bin"))
    assert name == "a.bin" and s.uri == tmp_path.as_uri()
    s, name = store.split_object_uri("w.pth")
    assert name == "w.pth"


def test_output_commits_manifest_last_with_checksums(tmp_path):
    s = store.open_store(tmp_path / "out")
    with commit.Output(s, "demo", {"p": 1}) as out:
        (out.dir / "a.txt").write_text("abc")
        (out.dir / "sub").mkdir()
        (out.dir / "sub" / "b.bin").write_bytes(b"\0" * 10)
        out.record["n"] = 2
    m = commit.read_manifest(s)
    assert m is not None and m["stage"] == "demo" and m["params"] == {"p": 1} and m["record"] == {"n": 2}
    files = {f["name"]: f for f in m["files"]}
    assert files["a.txt"]["size"] == 3
    assert files["a.txt"]["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert files["sub/b.bin"]["size"] == 10
    assert s.list() == ["_manifest.json", "a.txt", "sub/b.bin"]  # no staging leftovers


def test_failed_output_commits_nothing(tmp_path):
    s = store.open_store(tmp_path / "out")
    with pytest.raises(RuntimeError), commit.Output(s, "demo", {}) as out:
        (out.dir / "a.txt").write_text("abc")
        raise RuntimeError("stage died")
    assert commit.read_manifest(s) is None
    assert s.list() == []


def test_unreadable_or_foreign_manifest_is_not_committed(tmp_path):
    s = store.open_store(tmp_path)
    s.write_text(commit.MANIFEST, "{not json")
    assert commit.read_manifest(s) is None
    s.write_text(commit.MANIFEST, json.dumps({"format": 999}))
    assert commit.read_manifest(s) is None


def test_require_committed_names_the_flag(tmp_path):
    with pytest.raises(errors.NotCommitted, match="--model .*no committed output"):
        commit.require_committed(str(tmp_path), "--model")
