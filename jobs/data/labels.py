"""The labels file (the seed's ``val_label.txt``): one ``<image> <0-based label>`` per line.

Read by the preprocess stage, and by ``ghostbench plan``/``run`` before any step starts, so a wrong file
(1-based labels, a malformed line) is refused at once rather than after the exports and conversions.

An image is named by its file name (``ILSVRC2012_val_00000001.JPEG``, as the seed's file names it) or by its
path below the images folder (``n01440764/img_0001.JPEG``, for a copy laid out in class sub-folders); a
path is looked up first, then the file name. Two images that only a shared file name labels
(``n01440764/img_0001.JPEG`` and ``n01443537/img_0001.JPEG`` against ``img_0001.JPEG 0``) are refused: the
file cannot tell them apart, and they must be labelled by path. The file is UTF-8, with or without the
byte-order mark Windows editors write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jobs import errors
from jobs import store as store_mod

BOM = "\ufeff"
"""The byte-order mark: never part of an image's name (a UTF-8 file from a Windows editor starts with it)."""
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclasses.dataclass(frozen=True)
class LabelsFile:
    """A read labels file: each image name's label and the line it is on, in the file's order."""

    uri: str
    labels: dict[str, int]
    """image name (a file name, or a path below the images folder) -> 0-based label."""
    lines: dict[str, int]
    """image name -> its 1-based line in the file."""

    def match(self, images: Sequence[str], images_uri: str) -> tuple[dict[str, int], list[str]]:
        """(``{image: label}`` for the images the file labels, ``[names in the file that no image has]``, in the
        file's order). ``images`` are paths below ``images_uri``. ``BadInput`` naming the line when one file name
        labels two images (class sub-folders)."""
        label_of: dict[str, int] = {}
        claimed: dict[str, str] = {}  # name in the file -> the image it labels
        for image in images:
            key = image if image in self.labels else image.rsplit("/", 1)[-1]
            if key not in self.labels:
                continue
            other = claimed.setdefault(key, image)
            if other != image:
                raise errors.BadInput(
                    f"{self.uri}:{self.lines[key]}: {key} names both {other} and {image} below --images "
                    f"{images_uri}; the labels file cannot tell them apart: label each by its path below the "
                    f"images folder ('{image} <label>')")
            label_of[image] = self.labels[key]
        return label_of, [k for k in self.labels if k not in claimed]


def classes_of(card: Any) -> str:
    """Whose classes a label file's labels index, for messages: the model, and its offset where it has one
    (``mine (num_classes 10 - label_offset 5)``): the file's labels are the model's classes less the offset."""
    if not card.label_offset:
        return card.name
    return f"{card.name} (num_classes {card.num_classes} - label_offset {card.label_offset})"


def read_labels(uri: str, num_classes: int | None = None, model: str = "") -> LabelsFile:
    """The labels file at ``uri``; a malformed line is bad input naming it, and so is a label outside
    ``0..num_classes-1`` (a 1-based file, labels 1..1000, would otherwise score 0% unexplained)."""
    store, name = store_mod.split_object_uri(uri)
    if not store.exists(name):
        raise errors.BadInput(f"--labels {uri}: no such file")
    data = store.read_bytes(name)
    if data.startswith(_UTF16_BOMS):
        raise errors.BadInput(f"--labels {uri}: starts with a UTF-16 byte-order mark; expected UTF-8 text "
                              "(save it as UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.BadInput(f"--labels {uri}: not UTF-8 text ({e})") from e
    labels: dict[str, int] = {}
    lines: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.lstrip(BOM).split()  # a mark first (Windows editors), or inside (such files concatenated)
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdecimal():
            raise errors.BadInput(f"{uri}:{lineno}: expected '<image> <0-based label>', got {line.strip()!r}")
        if fields[0] in labels:
            raise errors.BadInput(f"{uri}:{lineno}: {fields[0]} is labelled twice (first on line {lines[fields[0]]})")
        label = int(fields[1])
        if num_classes is not None and label >= num_classes:
            of = f" of {model}" if model else ""
            hint = f" (a 1-based file has labels 1..{num_classes})" if label == num_classes else ""
            raise errors.BadInput(f"{uri}:{lineno}: label {label} is not one of the {num_classes} classes{of}; "
                                  f"labels are 0-based, 0..{num_classes - 1}{hint}")
        labels[fields[0]] = label
        lines[fields[0]] = lineno
    if not labels:
        raise errors.BadInput(f"--labels {uri}: no labels in the file")
    return LabelsFile(uri, labels, lines)
