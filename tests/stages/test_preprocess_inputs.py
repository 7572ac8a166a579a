"""Inputs that must not make preprocess lie (issue 20): images in class sub-folders sharing a file name, a labels
file with a byte-order mark, labelled images missing from the folder, and images too large to decode."""

from __future__ import annotations

import json
import pathlib
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from jobs import errors
from jobs import store as store_mod
from jobs.artifacts import commit, shards
from jobs.data import imaging
from jobs.tools import fake_imagenet
from tests.support import images as image_files
from tests.support.preprocess_set import run

SIZES = [(500, 375), (375, 500), (500, 333), (160, 120), (256, 300), (333, 257), (640, 480),
         (300, 256), (400, 400), (281, 499), (500, 281), (199, 263)]  # fake_imagenet's, in order


def index_of(out: pathlib.Path, i: int = 0, n: int = 1) -> dict:
    return json.loads((out / shards.shard_dir_name(i, n) / shards.INDEX).read_text())


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("ghostbench preprocess:")]


def nothing_committed(out: pathlib.Path) -> bool:
    return not out.exists() or store_mod.open_store(out).list() == []


# -- the same file name in two class folders ---------------------------------------------------------------------


def class_folders(tmp_path: pathlib.Path, fake_set: pathlib.Path) -> pathlib.Path:
    """n01440764/img_0001.JPEG and n01443537/img_0001.JPEG (two different images), as ImageNet copies in class
    folders are laid out."""
    root = tmp_path / "classes"
    for folder, i in (("n01440764", 1), ("n01443537", 2)):
        (root / folder).mkdir(parents=True)
        shutil.copy(fake_set / fake_imagenet.image_name(i), root / folder / "img_0001.JPEG")
    return root


def test_one_file_name_labelling_two_images_is_refused_naming_the_line(tmp_path, fake_set, capsys):
    root = class_folders(tmp_path, fake_set)
    labels = tmp_path / "val_label.txt"
    labels.write_text("other.JPEG 5\nimg_0001.JPEG 3\n")
    out = tmp_path / "prep"
    assert run(root, out, "--skip-bad", labels=labels) == errors.EXIT_BAD_INPUT  # not a bad image: a bad key
    (line,) = error_lines(capsys.readouterr().err)
    assert f"{labels}:2: img_0001.JPEG names both n01440764/img_0001.JPEG and n01443537/img_0001.JPEG" in line
    assert "cannot tell them apart" in line and "path below the images folder" in line
    assert nothing_committed(out)


def test_images_are_labelled_by_their_path_below_the_images_folder(tmp_path, fake_set):
    root = class_folders(tmp_path, fake_set)
    labels = tmp_path / "val_label.txt"
    labels.write_text("n01443537/img_0001.JPEG 1\nn01440764/img_0001.JPEG 0\n")
    assert run(root, tmp_path / "prep", labels=labels) == 0
    ix = index_of(tmp_path / "prep")
    assert [(im["name"], im["label"]) for im in ix["images"]] == [("n01440764/img_0001.JPEG", 0),
                                                                  ("n01443537/img_0001.JPEG", 1)]


def test_a_path_and_a_file_name_label_different_images(tmp_path, fake_set):
    """One image by its path, the other by the file name alone: each image has one label, which the file tells."""
    root = class_folders(tmp_path, fake_set)
    labels = tmp_path / "val_label.txt"
    labels.write_text("n01443537/img_0001.JPEG 1\nimg_0001.JPEG 0\n")
    assert run(root, tmp_path / "prep", labels=labels) == 0
    assert [im["label"] for im in index_of(tmp_path / "prep")["images"]] == [0, 1]


# -- byte-order marks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["first", "after concatenation"])
def test_a_labels_file_with_a_byte_order_mark_labels_every_image(images, tmp_path, where):
    labels = images / fake_imagenet.LABELS_FILE
    lines = labels.read_text().splitlines()
    if where == "first":  # as a Windows editor saves UTF-8
        labels.write_bytes("\r\n".join(lines).encode("utf-8-sig"))
    else:  # two such files concatenated
        labels.write_bytes(("\r\n".join(lines[:6]) + "\r\n").encode("utf-8-sig")
                           + ("\r\n".join(lines[6:]) + "\r\n").encode("utf-8-sig"))
    assert run(images, tmp_path / "prep") == 0
    ix = index_of(tmp_path / "prep")
    assert ix["counts"]["accepted"] == 12
    assert [im["label"] for im in ix["images"]] == [(7 * i) % 1000 for i in range(12)]


def test_a_utf16_labels_file_is_named_as_such(images, tmp_path, capsys):
    labels = images / fake_imagenet.LABELS_FILE
    labels.write_bytes(labels.read_text().encode("utf-16"))
    assert run(images, tmp_path / "prep") == errors.EXIT_BAD_INPUT
    (line,) = error_lines(capsys.readouterr().err)
    assert f"--labels {labels}: starts with a UTF-16 byte-order mark; expected UTF-8 text" in line


# -- labelled images missing from the folder ----------------------------------------------------------------------


def test_labelled_images_missing_from_the_folder_are_counted_and_named_in_every_shard(images, tmp_path, caplog):
    labels = images / fake_imagenet.LABELS_FILE
    gone = [fake_imagenet.image_name(i) for i in (12, 13, 14, 15)]
    labels.write_text(labels.read_text() + "".join(f"{n} 1\n" for n in gone))
    out = tmp_path / "prep"
    for shard in (0, 1):
        assert run(images, out, "--shard", str(shard), "--num-shards", "2") == 0
    for shard in (0, 1):  # every shard counts the whole folder: the same figure, which eval reads once
        ix = index_of(out, shard, 2)
        assert ix["missing"] == {"count": 4, "names": gone}
        record = commit.read_manifest(store_mod.open_store(out / shards.shard_dir_name(shard, 2)))["record"]
        assert record["missing"] == {"count": 4, "names": gone}
    warned = [r.getMessage() for r in caplog.records if "are not in --images" in r.getMessage()]
    assert len(warned) == 2
    assert f"4 of the 16 images {labels} labels are not in --images" in warned[0]
    assert ", ".join(gone[:3]) + ", ..." in warned[0] and "accuracy gate fails unless that is intended" in warned[0]


def test_a_limit_is_not_a_missing_image(fake_set, tmp_path):
    assert run(fake_set, tmp_path / "prep", "--limit", "3") == 0
    assert index_of(tmp_path / "prep")["missing"] == {"count": 0, "names": []}


# -- images too large to decode -----------------------------------------------------------------------------------


def test_a_huge_image_is_refused_in_one_line_from_its_header(images, tmp_path, capsys):
    """A 144-megapixel image passed with Pillow's raw warning on stderr and took preprocess to ~600 MB."""
    (images / fake_imagenet.image_name(4)).write_bytes(image_files.png_header(12_000, 12_000))
    out = tmp_path / "prep"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run(images, out) == errors.EXIT_BAD_INPUT
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    (line,) = error_lines(capsys.readouterr().err)
    assert (f"1 of 12 images cannot be used: {fake_imagenet.image_name(4)}: 12000x12000 is 144,000,000 pixels, "
            "over the limit of 89,478,485 (--max-pixels)") in line
    assert nothing_committed(out)


def test_skip_bad_counts_images_over_the_limit_as_too_large(fake_set, tmp_path):
    limit = 150_000
    over = [fake_imagenet.image_name(i) for i, (w, h) in enumerate(SIZES) if w * h > limit]
    assert 0 < len(over) < 12
    assert run(fake_set, tmp_path / "prep", "--max-pixels", str(limit), "--skip-bad") == 0
    ix = index_of(tmp_path / "prep")
    assert ix["counts"] == {"seen": 12, "accepted": 12 - len(over), "undecodable": 0, "unlabelled": 0,
                            "too_large": len(over)}
    assert [r["name"] for r in ix["rejected"]] == over
    assert all(f"over the limit of {limit:,} (--max-pixels)" in r["reason"] for r in ix["rejected"])


def test_sixteen_bit_greyscale_reaches_the_shard_as_its_top_eight_bits(images, tmp_path):
    name = fake_imagenet.image_name(3)  # 160x120: upscaled, like the fake set's own
    values = (np.arange(160 * 120, dtype=np.uint32).reshape(120, 160) * 3).astype(np.uint16)
    (images / name).write_bytes(image_files.encode(Image.fromarray(values), "PNG"))
    assert run(images, tmp_path / "prep", "--mode", "uint8", "--limit", "4") == 0
    ds = shards.open_dataset(str(tmp_path / "prep"))
    (batch, _), = ds.iter_batches(4)
    expected = Image.fromarray((values >> 8).astype(np.uint8)).convert("RGB")
    assert np.array_equal(batch[3], imaging.to_chw_uint8(imaging.resize_crop(expected)))
    assert batch[3].max() < 255  # convert('RGB') alone would have made it white
