"""The labels file: its encoding, and which image each of its names labels."""

from __future__ import annotations

import pytest

from jobs import errors
from jobs.data import labels


def read(tmp_path, data: bytes) -> labels.LabelsFile:
    path = tmp_path / "val_label.txt"
    path.write_bytes(data)
    return labels.read_labels(str(path), 1000)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    f = read(tmp_path, "a.JPEG 1\r\nb.JPEG 2\r\n".encode("utf-8-sig"))
    assert f.labels == {"a.JPEG": 1, "b.JPEG": 2} and f.lines == {"a.JPEG": 1, "b.JPEG": 2}


def test_a_labels_file_that_is_not_utf8_is_one_line(tmp_path):
    with pytest.raises(errors.BadInput, match="not UTF-8 text"):
        read(tmp_path, "a.JPEG 1\nb\xe9.JPEG 2\n".encode("latin-1"))


@pytest.mark.parametrize("images, label_of, missing", [
    (["a.JPEG", "b.JPEG"], {"a.JPEG": 0, "b.JPEG": 1}, ["c.JPEG", "x/c.JPEG"]),
    (["x/a.JPEG", "y/b.JPEG"], {"x/a.JPEG": 0, "y/b.JPEG": 1}, ["c.JPEG", "x/c.JPEG"]),  # file names below folders
    (["x/c.JPEG", "a.JPEG"], {"x/c.JPEG": 7, "a.JPEG": 0}, ["b.JPEG", "c.JPEG"]),  # a path first
    (["y/c.JPEG"], {"y/c.JPEG": 2}, ["a.JPEG", "b.JPEG", "x/c.JPEG"]),  # else the file name
])
def test_an_image_is_labelled_by_its_path_then_by_its_file_name(tmp_path, images, label_of, missing):
    f = read(tmp_path, b"a.JPEG 0\nb.JPEG 1\nc.JPEG 2\nx/c.JPEG 7\n")
    assert f.match(images, "file:///img") == (label_of, missing)


@pytest.mark.parametrize("images", [["n1/img.JPEG", "n2/img.JPEG"], ["n1/img.JPEG", "img.JPEG"],
                                    ["img.JPEG", "n1/img.JPEG"]])
def test_one_file_name_for_two_images_is_refused_naming_its_line(tmp_path, images):
    f = read(tmp_path, b"other.JPEG 0\n\nimg.JPEG 3\n")
    with pytest.raises(errors.BadInput) as info:
        f.match(images, "file:///img")
    assert str(info.value).startswith(f"{f.uri}:3: img.JPEG names both {images[0]} and {images[1]} below --images "
                                      "file:///img; the labels file cannot tell them apart")


def test_a_label_beyond_the_classes_left_by_the_offset_says_the_offset(tmp_path):
    # 10 classes, the first 5 the model's own (label_offset 5): the file's labels are 0..4; "not one of the 5 classes
    # of mine" alone read like a wrong class count
    from jobs.models import card as card_mod

    path = tmp_path / "val_label.txt"
    path.write_text("a.JPEG 5\n")
    card = card_mod.ModelCard("mine", num_classes=10, label_offset=5, resize_short=256, crop=224,
                              mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with pytest.raises(errors.BadInput, match=r"label 5 is not one of the 5 classes of mine \(num_classes 10 - "
                                              r"label_offset 5\)"):
        labels.read_labels(str(path), 5, labels.classes_of(card))
