"""The labels file (the seed's ``val_label.txt``): one ``<file name> <0-based label>`` per line.

Read by the preprocess stage, and by ``ghostbench plan``/``run`` before any step starts, so a wrong file
(1-based labels, a malformed line) is refused at once rather than after the exports and conversions.
"""

from __future__ import annotations

from jobs import errors
from jobs import store as store_mod


def read_labels(uri: str, num_classes: int | None = None, model: str = "") -> dict[str, int]:
    """{file name: 0-based label} from a val_label.txt; a malformed line is bad input naming it, and so is a
    label outside ``0..num_classes-1`` (a 1-based file, labels 1..1000, would otherwise score 0% unexplained)."""
    store, name = store_mod.split_object_uri(uri)
    if not store.exists(name):
        raise errors.BadInput(f"--labels {uri}: no such file")
    try:
        text = store.read_text(name)
    except UnicodeDecodeError as e:
        raise errors.BadInput(f"--labels {uri}: not UTF-8 text ({e})") from e
    labels: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise errors.BadInput(f"{uri}:{lineno}: expected '<file name> <0-based label>', got {line.strip()!r}")
        if fields[0] in labels:
            raise errors.BadInput(f"{uri}:{lineno}: {fields[0]} is labelled twice")
        label = int(fields[1])
        if num_classes is not None and label >= num_classes:
            of = f" of {model}" if model else ""
            hint = f" (a 1-based file has labels 1..{num_classes})" if label == num_classes else ""
            raise errors.BadInput(f"{uri}:{lineno}: label {label} is not one of the {num_classes} classes{of}; "
                                  f"labels are 0-based, 0..{num_classes - 1}{hint}")
        labels[fields[0]] = label
    if not labels:
        raise errors.BadInput(f"--labels {uri}: no labels in the file")
    return labels
