"""Preprocessing: the stage's images/s per core against the seed's own recipe, and scaling with processes.

On the same ImageNet-like images (``benchmarks.imagenet_like``), in one process, alternating:
  seed   : a plain transcription of the seed's imagenet_torch_preprocess.py: PIL, one image at a
           time, float32 arithmetic as written there, ``tofile`` to one .bin per image
  stage  : ``python -m jobs.stages.preprocess`` in-process, float32 (the default) and uint8, timed from
           the call to its committed output (listing, decoding, writing parts, manifest)
  opencv : the stage with ``--pipeline opencv`` (OpenCV decode and INTER_LINEAR resize), float32
The stage's float32 output is compared with the seed's .bin files (max abs difference; 0 means
the same bytes); the opencv output with the stage's (max and mean abs difference), and both are
run through the demo model (deterministic weights, float32 engine at batch 32) for top-1 agreement. Scaling: N shards of the same images built by N concurrent stage processes
(what the local executor and the Indexed Job do), aggregate images/s against one process; each
process's own processing time is used (start-up of the interpreter left out).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

import numpy as np

from benchmarks import assets, common

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def seed_recipe(src: pathlib.Path, out_dir: pathlib.Path) -> int:
    """The seed script's loop, as written there (resize, centre crop, normalize, tofile)."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for name in sorted(os.listdir(src)):
        if not name.endswith(".JPEG"):
            continue
        img = Image.open(src / name).convert("RGB")
        w, h = img.size
        if not ((w <= h and w == 256) or (h <= w and h == 256)):
            if w < h:
                img = img.resize((256, int(256 * h / w)), Image.BILINEAR)
            else:
                img = img.resize((int(256 * w / h), 256), Image.BILINEAR)
        w, h = img.size
        top, left = int(round((h - 224) / 2.0)), int(round((w - 224) / 2.0))  # noqa: RUF046 (as the seed)
        img = img.crop((left, top, left + 224, top + 224))
        arr = np.array(img, dtype=np.float32).transpose(2, 0, 1)
        arr = arr / 255.0
        arr -= np.array(MEAN, dtype=np.float32)[:, None, None]
        arr /= np.array(STD, dtype=np.float32)[:, None, None]
        np.ascontiguousarray(arr).tofile(out_dir / (name.split(".")[0] + ".bin"))
        count += 1
    return count


def _stage_args(images: pathlib.Path, out: pathlib.Path, mode: str, pipeline: str = "seed") -> list[str]:
    return ["--images", str(images), "--labels", str(images / "val_label.txt"), "--mode", mode,
            "--out", str(out), "--quiet", *(["--pipeline", pipeline] if pipeline != "seed" else [])]


def _stage(images: pathlib.Path, out: pathlib.Path, mode: str, pipeline: str = "seed") -> float:
    from jobs.stages import preprocess

    t0 = time.perf_counter()
    assert preprocess.main(_stage_args(images, out, mode, pipeline)) == 0
    return time.perf_counter() - t0


def max_diff_to_seed(data: pathlib.Path, bins: pathlib.Path) -> float:
    from jobs.artifacts import shards

    ds = shards.open_dataset(str(data))
    worst, i = 0.0, 0
    for batch, n in ds.iter_batches(16):
        for row in range(n):
            seed = np.fromfile(bins / (ds.names[i].split(".")[0] + ".bin"), dtype=np.float32)
            worst = max(worst, float(np.abs(batch[row].ravel() - seed).max()))
            i += 1
    return worst


def fast_path_fidelity(work: pathlib.Path, fast: pathlib.Path, faithful: pathlib.Path) -> dict[str, float]:
    """Pixel differences of the opencv output from the faithful one, and the demo model's top-1 agreement."""
    from jobs.artifacts import shards
    from jobs.backends.onnxruntime.backend import OnnxRuntimeBackend
    from jobs.stages import infer

    backend = OnnxRuntimeBackend.open(infer.load_engine(str(assets.engine(work, 32, "float32"))), "cpu", {})
    worst, total, values, agree, n_images = 0.0, 0.0, 0, 0, 0
    try:
        for (a, n), (b, _) in zip(shards.open_dataset(str(fast)).iter_batches(32, reuse=False),
                                  shards.open_dataset(str(faithful)).iter_batches(32, reuse=False)):
            d = np.abs(a[:n] - b[:n])
            worst, total, values = max(worst, float(d.max())), total + float(d.sum(dtype=np.float64)), values + d.size
            agree += int((backend.infer(a)[0][:n].argmax(1) == backend.infer(b)[0][:n].argmax(1)).sum())
            n_images += n
    finally:
        backend.close()
    return {"max_abs_diff": worst, "mean_abs_diff": total / values, "top1_agreement": agree / n_images}


def scaling(work: pathlib.Path, images: pathlib.Path, workers: int) -> float:
    """Aggregate images/s of ``workers`` concurrent shard processes (each timed by itself)."""
    from jobs.artifacts import commit

    out = work / f"pre-scale{workers}-{time.monotonic_ns()}"
    procs = [subprocess.Popen([sys.executable, "-m", "jobs.stages.preprocess", *_stage_args(images, out, "float32"),
                               "--shard", str(i), "--num-shards", str(workers)]) for i in range(workers)]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError(f"a preprocess shard process failed ({workers} workers)")
    records = [json.loads((d / commit.MANIFEST).read_text())["record"] for d in sorted(out.iterdir())]
    return sum(r["num_images"] for r in records) / max(r["seconds"] for r in records)


def run(work: pathlib.Path, repeats: int = 3, images: int = 300) -> dict[str, Any]:
    from jobs import errors

    try:
        from jobs.data import imaging_opencv

        imaging_opencv.require()
        opencv = True
    except (ImportError, errors.MissingDependency):  # the fast path is optional (and new)
        opencv = False
    img = assets.images(work, images)
    seed, f32, u8, fast = [], [], [], []
    bins = work / "seed-bins"
    data = None
    for r in range(repeats):
        data = work / f"pre-f32-{r}-{time.monotonic_ns()}"
        t0 = time.perf_counter()
        n = seed_recipe(img, bins)
        seed.append(n / (time.perf_counter() - t0))
        f32.append(images / _stage(img, data, "float32"))
        u8.append(images / _stage(img, work / f"pre-u8-{r}-{time.monotonic_ns()}", "uint8"))
        if opencv:
            fast_data = work / f"pre-cv-{r}-{time.monotonic_ns()}"
            fast.append(images / _stage(img, fast_data, "float32", "opencv"))
    levels = sorted({1, 2, os.cpu_count() or 1})
    per_level: dict[int, list[float]] = {w: [] for w in levels}
    for _ in range(repeats):
        for w in levels:
            per_level[w].append(scaling(work, img, w))
    speedup = {str(w): common.summarize([v / one for v, one in zip(per_level[w], per_level[1])]) for w in levels}
    res = {
        "images": images, "repeats": repeats, "cores": os.cpu_count(),
        "seed_img_s": common.summarize(seed),
        "stage_float32_img_s": common.summarize(f32),
        "stage_uint8_img_s": common.summarize(u8),
        "float32_vs_seed": common.summarize([a / b for a, b in zip(f32, seed)]),
        "uint8_vs_seed": common.summarize([a / b for a, b in zip(u8, seed)]),
        "max_abs_diff_to_seed": max_diff_to_seed(data, bins),
        "workers_img_s": {str(w): common.summarize(v) for w, v in per_level.items()},
        "speedup": speedup,
    }
    if opencv:
        res["opencv_img_s"] = common.summarize(fast)
        res["opencv_vs_float32"] = common.summarize([a / b for a, b in zip(fast, f32)])
        res["opencv_fidelity"] = fast_path_fidelity(work, fast_data, data)
    return res


def _fmt(s: dict[str, float], digits: int = 2) -> tuple[str, str]:
    return f"{s['median']:.{digits}f}", f"{s['min']:.{digits}f}-{s['max']:.{digits}f}"


def render(res: dict[str, Any]) -> str:
    rows = [["seed recipe (PIL, one at a time)", f"{res['seed_img_s']['median']:.0f}", "1.00", "", ""],
            ["stage, float32", f"{res['stage_float32_img_s']['median']:.0f}", *_fmt(res["float32_vs_seed"]),
             f"{res['max_abs_diff_to_seed']:.3g}"],
            ["stage, uint8", f"{res['stage_uint8_img_s']['median']:.0f}", *_fmt(res["uint8_vs_seed"]), ""]]
    out = [common.table(["one process", "img/s", "vs seed", "range", "max |diff|"], rows), ""]
    if "opencv_img_s" in res:
        fid = res["opencv_fidelity"]
        out += [common.table(["opencv pipeline (float32)", "img/s", "vs stage float32", "range", "max |diff|",
                              "mean |diff|", "top-1 agreement"],
                             [["--pipeline opencv", f"{res['opencv_img_s']['median']:.0f}",
                               *_fmt(res["opencv_vs_float32"]), f"{fid['max_abs_diff']:.3g}",
                               f"{fid['mean_abs_diff']:.3g}", f"{100 * fid['top1_agreement']:.1f}%"]]), ""]
    else:
        out += ["opencv pipeline: not measured (OpenCV is not installed)", ""]
    rows = [[w, f"{res['workers_img_s'][w]['median']:.0f}", *_fmt(res["speedup"][w]),
             f"{res['speedup'][w]['median'] / int(w):.2f}"] for w in res["speedup"]]
    out.append(common.table(["processes", "img/s", "speed-up", "range", "per process"], rows))
    return "\n".join(out)


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    top = max(res["speedup"], key=int)
    lines = [("preprocess float32 stage/seed, one process", res["float32_vs_seed"]),
             (f"preprocess speed-up, {top} processes", res["speedup"][top])]
    if "opencv_vs_float32" in res:
        lines.append(("preprocess --pipeline opencv / seed pipeline", res["opencv_vs_float32"]))
    return lines
