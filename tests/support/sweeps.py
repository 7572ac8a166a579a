"""Small sweep files for the controller's tests: fake images, the null backend, a local store."""

from __future__ import annotations

import yaml

from jobs.tools import fake_imagenet


def make_sweep(tmp_path, name="s", corrupt=None, shards=2, store_dir="store", targets=None):
    """Write ``<tmp_path>/<name>.yaml``: 12 fake images (made once in ``tmp_path/images``; ``corrupt`` names one to
    overwrite with bytes no decoder takes), two null-backend targets unless ``targets``, a store in
    ``tmp_path/store_dir``; returns the file's path."""
    images = tmp_path / "images"
    if not images.exists():
        names = fake_imagenet.make_image_set(images, count=12, seed=5)
        fake_imagenet.write_labels(images, names, [i % 3 for i in range(len(names))])
    if corrupt:
        (images / corrupt).write_bytes(b"not a jpeg")
    doc = {
        "name": name,
        "store": str(tmp_path / store_dir),
        "dataset": {"images": str(images), "labels": str(images / "val_label.txt"), "shards": shards},
        "targets": targets or [{"name": "null-f32", "backend": "null", "batch_sizes": [1, 4]},
                               {"name": "null-u8", "backend": "null", "input_mode": "uint8", "batch_sizes": [4]}],
        "reference": {"top1": 30.0, "top5": 30.0, "gate": 5.0},
        "timing": {"warmup": 0, "min_batches": 1, "min_seconds": 0},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
