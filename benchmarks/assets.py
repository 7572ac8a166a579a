"""What the benchmarks measure on, built once per work folder through the stages themselves.

Every function returns a path and builds only what is missing, so benchmarks share one image set,
one preprocessed dataset per mode and one export per variant within a run (and across runs given
the same ``--work``).
"""

from __future__ import annotations

import os
import pathlib

from benchmarks import imagenet_like

MODEL = "ghostnet_1.0x"
WEIGHTS_SEED = 0  # deterministic weights: the numbers do not depend on a download


def images(work: pathlib.Path, count: int, distinct: int | None = None) -> pathlib.Path:
    """An ImageNet-like set of ``count`` images (``val_label.txt`` inside).

    With ``distinct``, the set repeats the first ``distinct`` images (hard links to
    ``images(work, distinct)``, generated once).
    """
    tag = f"{count}" if distinct is None else f"{count}-of-{distinct}"
    path = work / f"images-{tag}"
    if (path / imagenet_like.LABELS_FILE).exists():
        return path
    if distinct is not None and distinct < count:
        source = images(work, distinct)
        path.mkdir(parents=True, exist_ok=True)
        for i in range(distinct):  # make_image_set keeps these and links the rest to them
            name = imagenet_like.image_name(i)
            if not (path / name).exists():
                os.link(source / name, path / name)
    imagenet_like.make_image_set(path, count, seed=0, distinct=distinct)
    return path


def _run(main, argv: list[str]) -> None:
    rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"benchmark set-up failed (exit {rc}): {' '.join(argv)}")


def dataset(work: pathlib.Path, count: int, mode: str = "float32", distinct: int | None = None) -> pathlib.Path:
    """The preprocess stage's output (one shard) for ``images(work, count, distinct)``."""
    from jobs.stages import preprocess

    img = images(work, count, distinct)
    out = work / f"{img.name.replace('images', 'data', 1)}-{mode}"
    _run(preprocess.main, ["--images", str(img), "--labels", str(img / imagenet_like.LABELS_FILE),
                           "--mode", mode, "--out", str(out), "--quiet"])
    return out


def weights(work: pathlib.Path) -> tuple[pathlib.Path, str]:
    """Deterministic GhostNet 1.0x weights and their checksum."""
    from jobs.artifacts import commit
    from jobs.models import weights as weights_mod

    path = work / "weights.pth"
    if path.exists():
        return path, "sha256:" + commit.file_digest(path)
    return path, weights_mod.save_deterministic_weights(path, MODEL, WEIGHTS_SEED)


def export(work: pathlib.Path, input_dtype: str = "float32", seed_style: bool = False) -> pathlib.Path:
    """The export stage's output. ``seed_style``: exactly as the seed exports (no-ops kept)."""
    from jobs.stages import export as export_mod

    w, checksum = weights(work)
    out = work / f"export-{input_dtype}{'-seed' if seed_style else ''}"
    _run(export_mod.main, ["--model", MODEL, "--weights", str(w), "--checksum", checksum,
                           "--input-dtype", input_dtype, "--out", str(out), "--quiet",
                           *(["--keep-noops"] if seed_style else [])])
    return out


def engine(work: pathlib.Path, batch_size: int, input_dtype: str = "float32") -> pathlib.Path:
    """The convert stage's ONNX Runtime engine for ``batch_size`` (offline optimizations applied)."""
    from jobs.stages import convert

    model = export(work, input_dtype)
    out = work / f"engine-{input_dtype}-bs{batch_size}"
    _run(convert.main, ["--model", str(model), "--batch-size", str(batch_size), "--out", str(out), "--quiet"])
    return out
