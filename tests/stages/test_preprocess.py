"""The preprocess stage end to end on a small fake ImageNet, and the shard reader."""

from __future__ import annotations

import contextlib
import json
import pathlib

import numpy as np
import pytest

from jobs import errors
from jobs import store as store_mod
from jobs.artifacts import commit, shards
from jobs.data import imaging
from jobs.stages import preprocess
from jobs.tools import fake_imagenet
from tests.support.preprocess_set import run

F32_BYTES = 3 * 224 * 224 * 4  # 602,112
U8_BYTES = 3 * 224 * 224  # 150,528
HEADER = 128


def shard_dir(out: pathlib.Path, i: int = 0, n: int = 1) -> pathlib.Path:
    return out / shards.shard_dir_name(i, n)


def expected_array(images: pathlib.Path, name: str, mode: str = "float32") -> np.ndarray:
    hwc = imaging.resize_crop(imaging.decode((images / name).read_bytes(), name))
    return imaging.normalize(hwc) if mode == "float32" else imaging.to_chw_uint8(hwc)


def image_names(images: pathlib.Path) -> list[str]:
    return sorted((p.name for p in images.glob("*.JPEG")), key=imaging.natural_key)


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("ghostbench preprocess:")]


@pytest.mark.parametrize("mode, per_image, dtype", [("float32", F32_BYTES, np.float32),
                                                    ("uint8", U8_BYTES, np.uint8)])
def test_one_shard_parts_and_index(fake_set, tmp_path, mode, per_image, dtype):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--mode", mode, "--images-per-part", "5") == 0
    sd = shard_dir(out)
    manifest = commit.read_manifest(store_mod.open_store(sd))
    assert manifest is not None and manifest["stage"] == "preprocess"
    assert manifest["record"]["counts"] == {"seen": 12, "accepted": 12, "undecodable": 0, "unlabelled": 0,
                                            "too_large": 0}
    assert manifest["record"]["missing"] == {"count": 0, "names": []}
    index = json.loads((sd / "index.json").read_text())
    names = image_names(fake_set)
    assert index["mode"] == mode and index["dtype"] == np.dtype(dtype).name
    assert index["image_shape"] == [3, 224, 224] and index["num_images"] == 12
    assert (index["shard"], index["num_shards"]) == (0, 1)
    assert index["recipe"]["resize_short"] == 256 and index["recipe"]["mean"] == [0.485, 0.456, 0.406]
    assert [im["name"] for im in index["images"]] == names
    assert [im["label"] for im in index["images"]] == [(7 * i) % 1000 for i in range(12)]
    assert [(im["part"], im["row"]) for im in index["images"]] == [(i // 5, i % 5) for i in range(12)]
    assert index["rejected"] == []
    assert sorted(p.name for p in sd.iterdir()) == ["_manifest.json", "index.json", "part-00000.npy",
                                                    "part-00001.npy", "part-00002.npy"]
    for p, rows in enumerate([5, 5, 2]):
        part = sd / shards.part_name(p)
        assert part.stat().st_size == HEADER + rows * per_image
        arr = np.load(part)
        assert arr.shape == (rows, 3, 224, 224) and arr.dtype == dtype
        for r in range(rows):
            assert np.array_equal(arr[r], expected_array(fake_set, names[5 * p + r], mode))


def test_three_shards_concatenate_to_one(fake_set, tmp_path):
    one, three = tmp_path / "one", tmp_path / "three"
    assert run(fake_set, one, "--images-per-part", "4") == 0
    for i in range(3):
        assert run(fake_set, three, "--shard", str(i), "--num-shards", "3", "--images-per-part", "3") == 0
    per_shard = [json.loads((shard_dir(three, i, 3) / "index.json").read_text()) for i in range(3)]
    assert [ix["num_images"] for ix in per_shard] == [4, 4, 4]
    concatenated = [im["name"] for ix in per_shard for im in ix["images"]]
    assert concatenated == image_names(fake_set)
    a, b = shards.open_dataset(str(one)), shards.open_dataset(str(three))
    assert a.names == b.names == concatenated and np.array_equal(a.labels, b.labels)
    assert b.num_shards == 3 and b.num_images == 12
    xa = np.concatenate([x[:n].copy() for x, n in a.iter_batches(5)])
    xb = np.concatenate([x[:n].copy() for x, n in b.iter_batches(5)])
    assert xa.shape == (12, 3, 224, 224) and np.array_equal(xa, xb)


def test_limit_and_non_image_files(images, tmp_path):
    (images / "notes.json").write_text("{}")
    (images / "README.md").write_text("hello")
    out = tmp_path / "prep"
    assert run(images, out, "--limit", "7", "--shard", "1", "--num-shards", "2") == 0
    index = json.loads((shard_dir(out, 1, 2) / "index.json").read_text())
    assert [im["name"] for im in index["images"]] == image_names(images)[3:7]


def test_write_bin_files_and_info(fake_set, tmp_path):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--write-bin", "--images-per-part", "5") == 0
    sd = shard_dir(out)
    names = image_names(fake_set)
    parts = np.concatenate([np.load(sd / shards.part_name(p)) for p in range(3)])
    info = (sd / preprocess.INFO_FILE).read_text().splitlines()
    assert len(info) == 12
    for i, name in enumerate(names):
        stem = name.split(".")[0]
        assert info[i] == f"{i} bin/{stem}.bin 224 224"
        b = sd / "bin" / f"{stem}.bin"
        assert b.stat().st_size == F32_BYTES
        assert np.array_equal(np.fromfile(b, dtype=np.float32).reshape(3, 224, 224), parts[i])
    manifest = commit.read_manifest(store_mod.open_store(sd))
    assert {f["name"] for f in manifest["files"]} >= {"bin/ILSVRC2012_val_00000001.bin", preprocess.INFO_FILE}


def test_write_bin_uint8_is_raw_bytes(fake_set, tmp_path):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--write-bin", "--mode", "uint8", "--limit", "2") == 0
    b = shard_dir(out) / "bin" / "ILSVRC2012_val_00000002.bin"
    assert b.stat().st_size == U8_BYTES
    assert b.read_bytes() == expected_array(fake_set, "ILSVRC2012_val_00000002.JPEG", "uint8").tobytes()


def nothing_committed(out: pathlib.Path) -> bool:
    return not out.exists() or store_mod.open_store(out).list() == []


def test_undecodable_image_fails_with_one_line(images, tmp_path, capsys):
    (images / "ILSVRC2012_val_00000005.JPEG").write_bytes(b"this is not a jpeg")
    out = tmp_path / "prep"
    assert run(images, out) == errors.EXIT_BAD_INPUT
    lines = error_lines(capsys)
    assert len(lines) == 1
    assert "ILSVRC2012_val_00000005.JPEG" in lines[0] and "1 of 12" in lines[0] and "--skip-bad" in lines[0]
    assert nothing_committed(out)


def test_many_bad_images_name_the_first_three(images, tmp_path, capsys):
    for i in (2, 4, 6, 8, 10):
        (images / fake_imagenet.image_name(i)).write_bytes(b"")
    assert run(images, tmp_path / "prep") == errors.EXIT_BAD_INPUT
    (line,) = error_lines(capsys)
    assert "5 of 12" in line and "and 2 more" in line
    assert all(fake_imagenet.image_name(i) in line for i in (2, 4, 6))
    assert fake_imagenet.image_name(8) not in line


def test_unlabelled_image_fails(images, tmp_path, capsys):
    labels = images / fake_imagenet.LABELS_FILE
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(line for line in lines if not line.startswith("ILSVRC2012_val_00000003")) + "\n")
    out = tmp_path / "prep"
    assert run(images, out) == errors.EXIT_BAD_INPUT
    (line,) = error_lines(capsys)
    assert "ILSVRC2012_val_00000003.JPEG" in line and "no label" in line
    assert nothing_committed(out)


def test_skip_bad_commits_without_them(images, tmp_path):
    (images / "ILSVRC2012_val_00000005.JPEG").write_bytes(b"\x89PNG broken")
    labels = images / fake_imagenet.LABELS_FILE
    labels.write_text("".join(line + "\n" for line in labels.read_text().splitlines()
                              if not line.startswith("ILSVRC2012_val_00000009")))
    out = tmp_path / "prep"
    assert run(images, out, "--skip-bad") == 0
    index = json.loads((shard_dir(out) / "index.json").read_text())
    assert index["counts"] == {"seen": 12, "accepted": 10, "undecodable": 1, "unlabelled": 1, "too_large": 0}
    assert [r["name"] for r in index["rejected"]] == ["ILSVRC2012_val_00000005.JPEG", "ILSVRC2012_val_00000009.JPEG"]
    assert all(r["reason"] for r in index["rejected"])
    ds = shards.open_dataset(str(out))
    assert ds.num_images == 10 and "ILSVRC2012_val_00000005.JPEG" not in ds.names
    assert [im["row"] for im in index["images"]] == list(range(10))


def test_missing_label_keeps_minus_one_in_dataset_labels(tmp_path):
    ix = {"images": [{"name": "a", "label": None, "part": 0, "row": 0}], "mode": "uint8", "dtype": "uint8",
          "image_shape": [3, 224, 224], "recipe": {}}
    ds = shards.Dataset("x", store_mod.open_store(tmp_path), [store_mod.open_store(tmp_path)], [ix])
    assert ds.labels.tolist() == [-1] and ds.labels.dtype == np.int64


@pytest.mark.parametrize("bad_line", ["ILSVRC2012_val_00000003.JPEG", "ILSVRC2012_val_00000003.JPEG x",
                                      "ILSVRC2012_val_00000003.JPEG 1 2", "ILSVRC2012_val_00000001.JPEG 5",
                                      "ILSVRC2012_val_00000003.JPEG \u00b2"])
def test_malformed_labels_line_names_file_and_line(images, tmp_path, capsys, bad_line):
    labels = images / fake_imagenet.LABELS_FILE
    lines = labels.read_text().splitlines()
    lines[2] = bad_line
    labels.write_text("\n".join(lines) + "\n")
    assert run(images, tmp_path / "prep") == errors.EXIT_BAD_INPUT
    (line,) = error_lines(capsys)
    assert f"{labels}:3:" in line


@pytest.mark.parametrize("label, hint", [(1000, "a 1-based file has labels 1..1000"), (4321, "")])
def test_label_outside_the_models_classes_is_bad_input_before_decoding(images, tmp_path, capsys, monkeypatch,
                                                                         label, hint):
    """A 1-based val_label.txt (labels 1..1000) would score 0% with no hint: refused, naming file and line."""
    labels = images / fake_imagenet.LABELS_FILE
    lines = labels.read_text().splitlines()
    lines[4] = f"{lines[4].split()[0]} {label}"
    labels.write_text("\n".join(lines) + "\n")

    def boom(*a, **k):
        raise AssertionError("decoded an image before checking the labels")

    monkeypatch.setattr(imaging, "decode", boom)
    out = tmp_path / "prep"
    assert run(images, out) == errors.EXIT_BAD_INPUT
    (line,) = error_lines(capsys)
    assert f"{labels}:5: label {label} is not one of the 1000 classes of ghostnet_1.0x" in line
    assert "labels are 0-based, 0..999" in line and hint in line
    assert nothing_committed(out)


def test_labels_up_to_the_last_class_are_accepted(images, tmp_path):
    labels = images / fake_imagenet.LABELS_FILE
    lines = labels.read_text().splitlines()
    lines[0] = f"{lines[0].split()[0]} 999"
    labels.write_text("\n".join(lines) + "\n")
    assert run(images, tmp_path / "prep", "--limit", "1") == 0
    assert shards.open_dataset(str(tmp_path / "prep")).labels.tolist() == [999]


def test_missing_labels_file_and_empty_images_are_bad_input(images, tmp_path, capsys):
    assert run(images, tmp_path / "a", labels=tmp_path / "nope.txt") == errors.EXIT_BAD_INPUT
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(empty, tmp_path / "b", labels=images / fake_imagenet.LABELS_FILE) == errors.EXIT_BAD_INPUT
    assert len(error_lines(capsys)) == 2


@pytest.mark.parametrize("args", [["--shard", "3", "--num-shards", "3"], ["--num-shards", "0"],
                                  ["--images-per-part", "0"], ["--limit", "0"], ["--model", "resnet"],
                                  ["--max-pixels", "0"], ["--max-pixels", "89478486"]])
def test_bad_arguments_exit_2(fake_set, tmp_path, args):
    assert run(fake_set, tmp_path / "prep", *args) == errors.EXIT_BAD_INPUT


def test_rerun_does_nothing_and_force_rebuilds(fake_set, tmp_path, monkeypatch):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--limit", "3") == 0
    manifest = (shard_dir(out) / "_manifest.json").read_text()

    def boom(*a, **k):
        raise AssertionError("decoded an image on a rerun")

    monkeypatch.setattr(imaging, "decode", boom)
    assert run(fake_set, out, "--limit", "3") == 0
    assert (shard_dir(out) / "_manifest.json").read_text() == manifest
    monkeypatch.undo()
    assert run(fake_set, out, "--limit", "3", "--force") == 0
    assert (shard_dir(out) / "_manifest.json").read_text() != manifest


def test_iter_batches_pads_last_batch(fake_set, tmp_path):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--limit", "10", "--images-per-part", "3") == 0
    ds = shards.open_dataset(str(out))
    assert (ds.mode, ds.dtype, ds.image_shape, ds.num_images) == ("float32", np.float32, (3, 224, 224), 10)
    assert ds.uri == str(out) and len(ds.index) == 1
    names = image_names(fake_set)[:10]
    assert ds.names == names
    for _ in range(2):  # several passes give the same batches
        batches = [(x.copy(), n) for x, n in ds.iter_batches(4)]
        assert [n for _, n in batches] == [4, 4, 2]
        assert all(x.shape == (4, 3, 224, 224) and x.dtype == np.float32 for x, _ in batches)
        assert not batches[-1][0][2:].any()
        flat = np.concatenate([x[:n] for x, n in batches])
        for i in (0, 3, 5, 9):
            assert np.array_equal(flat[i], expected_array(fake_set, names[i]))
    fresh = list(ds.iter_batches(4, reuse=False))
    assert fresh[0][0] is not fresh[1][0]
    assert [n for _, n in ds.iter_batches(10)] == [10]
    assert [n for _, n in ds.iter_batches(32)] == [10]
    with pytest.raises(errors.BadInput):
        next(ds.iter_batches(0))


def test_iter_batches_streams_through_open_read(fake_set, tmp_path, monkeypatch):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--limit", "10", "--images-per-part", "4", "--mode", "uint8") == 0
    ds = shards.open_dataset(str(out))
    reads: list[int] = []
    opened: list[str] = []
    real_open_read = store_mod.local.FileStore.open_read

    class Recorder:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            assert n is not None and n >= 0, "read the whole object"
            data = self.f.read(n)
            reads.append(len(data))
            return data

        def readinto(self, b):
            n = self.f.readinto(b)
            reads.append(n)
            return n

    @contextlib.contextmanager
    def recording_open_read(self, name):
        opened.append(name)
        with real_open_read(self, name) as f:
            yield Recorder(f)

    def no_load(*a, **k):
        raise AssertionError("np.load reads a whole part")

    monkeypatch.setattr(store_mod.local.FileStore, "open_read", recording_open_read)
    monkeypatch.setattr(np, "load", no_load)
    counts = [n for _, n in ds.iter_batches(3)]
    assert counts == [3, 3, 3, 1]
    assert opened == ["part-00000.npy", "part-00001.npy", "part-00002.npy"]
    assert max(reads) <= 3 * U8_BYTES  # never more than one batch at a time


def test_uncommitted_shard_is_not_committed_error(fake_set, tmp_path):
    out = tmp_path / "prep"
    for i in (0, 2):
        assert run(fake_set, out, "--shard", str(i), "--num-shards", "3") == 0
    with pytest.raises(errors.NotCommitted, match="shard-00001-of-00003"):
        shards.open_dataset(str(out))
    assert run(fake_set, out, "--shard", "1", "--num-shards", "3") == 0
    assert shards.open_dataset(str(out)).num_images == 12
    (shard_dir(out, 2, 3) / "_manifest.json").unlink()
    with pytest.raises(errors.NotCommitted, match="shard-00002-of-00003"):
        shards.open_dataset(str(out))


def test_open_dataset_errors(fake_set, tmp_path):
    with pytest.raises(errors.NotCommitted):
        shards.open_dataset(str(tmp_path / "nothing"))
    out = tmp_path / "prep"
    assert run(fake_set, out, "--limit", "4") == 0
    assert run(fake_set, out, "--limit", "4", "--shard", "0", "--num-shards", "2") == 0
    with pytest.raises(errors.BadInput, match="different runs"):
        shards.open_dataset(str(out))


def test_open_dataset_rejects_inconsistent_shards(fake_set, tmp_path):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--shard", "0", "--num-shards", "2", "--limit", "4") == 0
    assert run(fake_set, out, "--shard", "1", "--num-shards", "2", "--limit", "4", "--mode", "uint8") == 0
    with pytest.raises(errors.BadInput, match="mode"):
        shards.open_dataset(str(out))


def test_part_header_disagreeing_with_index_is_bad_input(fake_set, tmp_path):
    out = tmp_path / "prep"
    assert run(fake_set, out, "--limit", "3", "--mode", "uint8") == 0
    part = shard_dir(out) / "part-00000.npy"
    part.write_bytes(shards._npy_header(np.dtype(np.uint8), (2, 3, 224, 224)) + b"\0" * (2 * U8_BYTES))
    ds = shards.open_dataset(str(out))
    with pytest.raises(errors.BadInput, match="index.json says"):
        list(ds.iter_batches(2))


def test_fake_imagenet_cli(tmp_path, capsys):
    assert fake_imagenet.main([str(tmp_path / "fk"), "--count", "17", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "fk")
    lines = (tmp_path / "fk" / fake_imagenet.LABELS_FILE).read_text().splitlines()
    assert lines[16] == "ILSVRC2012_val_00000017.JPEG 16"
    again = tmp_path / "again"
    fake_imagenet.make_image_set(again, count=17, seed=1)
    assert (again / "ILSVRC2012_val_00000009.JPEG").read_bytes() == \
        (tmp_path / "fk" / "ILSVRC2012_val_00000009.JPEG").read_bytes()

