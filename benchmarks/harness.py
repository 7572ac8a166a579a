"""Harness efficiency: the infer stage's end-to-end images/s against the bare backend call.

Part 1, ONNX Runtime on this CPU, the same engine and images, alternating within each repeat:
  bare      : OnnxRuntimeBackend.infer on batches already in memory (nothing but the model)
  stage     : jobs.stages.infer end to end (reading shards from the store, feeding, top-5, writing
              predictions): summary.json's end_to_end.images_per_second (the first pass)
  in-pass   : the same run's backend time / its end-to-end time (end_to_end.efficiency): bare and
              stage measured batch by batch in one pass, so machine drift cancels out
  overlap   : the stage with reading ahead and ranking behind forced on (the timing protocol's ``overlap``, jobs.harness.passes); by
              default a backend computing on the host's cores runs serially, and this shows why
  null      : the stage with the null backend: the harness alone, its ceiling
Part 2, a device of the seed's Ascend 310P speed: the null backend waiting batch / (published
310P images/s) with the host idle, as a host waits on an NPU. In-pass efficiency serial (forced)
and overlapped (the default for a device): what the host side costs next to a fast accelerator. 1,024 images (256 distinct, repeated)
so that filling and draining the overlap is not what is measured.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from benchmarks import assets, common, engine

BATCH_SIZES = (1, 4, 8, 16, 32)
DEVICE = "Ascend310P3"  # the seed's 310P card (catalogue name)


def prepare(work, images: int) -> dict[str, str]:
    data = assets.dataset(work, images, "float32")
    return {"data": str(data), **{f"engine{bs}": str(assets.engine(work, bs, "float32")) for bs in BATCH_SIZES}}


def bare_images_per_s(engine_uri: str, data_uri: str, bs: int) -> float:
    """The engine alone, opened as the infer stage opens it, on batches already in memory."""
    batches = engine.load_batches(data_uri, bs)
    run = engine.engine_runner(engine_uri)
    for b, _ in batches[:engine.WARMUP]:
        run(b)
    return engine.images_per_s(run, batches)


def stage_pass(work, tag: str, args: list[str], overlap: bool | None = None,
               staging: bool | None = None) -> dict[str, Any]:
    """The infer stage's first pass (summary.json's end_to_end), run in this process.

    ``overlap``, ``staging``: None = the stage's own choice, True/False = forced."""
    from jobs.stages import infer

    out = work / f"infer-{tag}-{time.monotonic_ns()}"
    assert infer.main([*args, "--min-batches", "1", "--min-seconds", "0", "--repetitions", "1", "--out", str(out), "--quiet"],
                      overlap=overlap, staging=staging) == 0
    return json.loads((out / "summary.json").read_text())["end_to_end"]


def cpu_engine(work, paths: dict[str, str], repeats: int) -> dict[str, Any]:
    results = {}
    for bs in BATCH_SIZES:
        args = ["--engine", paths[f"engine{bs}"], "--data", paths["data"], "--batch-size", str(bs)]
        m: dict[str, list[float]] = {k: [] for k in ("bare", "stage", "in_pass", "overlap", "null")}
        for r in range(repeats):
            m["bare"].append(bare_images_per_s(paths[f"engine{bs}"], paths["data"], bs))
            for forced in ((None, True) if r % 2 == 0 else (True, None)):  # neither goes first always
                p = stage_pass(work, f"ort{bs}", args, forced)
                if forced is None:
                    m["stage"].append(p["images_per_second"])
                    m["in_pass"].append(p["efficiency"])
                else:
                    m["overlap"].append(p["images_per_second"])
            m["null"].append(stage_pass(work, f"null{bs}", ["--backend", "null", "--data", paths["data"],
                                                             "--batch-size", str(bs)])["images_per_second"])
        results[str(bs)] = {k: common.summarize(v) for k, v in m.items()}
        results[str(bs)]["ratio"] = common.summarize([s / b for s, b in zip(m["stage"], m["bare"])])
        results[str(bs)]["overlap_vs_default"] = common.summarize([o / s for o, s in zip(m["overlap"], m["stage"])])
    return results


def simulated_device(work, repeats: int, images: int) -> dict[str, Any]:
    from jobs.results import published

    data = assets.dataset(work, images, "float32", distinct=min(images, 256))
    results = {}
    for bs in BATCH_SIZES:
        rate = published.SEED[DEVICE].throughput[bs]
        args = ["--backend", "null", "--option", f"images_per_s={rate}", "--data", str(data), "--batch-size", str(bs)]
        m: dict[str, list[float]] = {"overlap": [], "serial": []}
        for r in range(repeats):
            for forced in ((None, False) if r % 2 == 0 else (False, None)):
                m["serial" if forced is False else "overlap"].append(
                    stage_pass(work, f"sim{bs}", args, forced)["efficiency"])
        results[str(bs)] = {"device_images_per_s": rate, **{k: common.summarize(v) for k, v in m.items()}}
    return results


def run(work, images: int = 256, repeats: int = 5, simulated_images: int = 1024) -> dict[str, Any]:
    logging.getLogger("ghostbench").setLevel(logging.WARNING)
    paths = prepare(work, images)
    return {"images": images, "repeats": repeats, "batch_sizes": cpu_engine(work, paths, repeats),
            "simulated_device": {"device": DEVICE, "images": simulated_images,
                                 "batch_sizes": simulated_device(work, repeats, simulated_images)}}


def _range(s: dict[str, float]) -> str:
    return f"{s['min']:.3f}-{s['max']:.3f}"


def render(res: dict[str, Any]) -> str:
    rows = [[bs, f"{r['bare']['median']:.1f}", f"{r['stage']['median']:.1f}", f"{r['ratio']['median']:.3f}",
             _range(r["ratio"]), f"{r['in_pass']['median']:.3f}", _range(r["in_pass"]),
             f"{r['overlap_vs_default']['median']:.3f}", _range(r["overlap_vs_default"]),
             f"{r['null']['median']:.0f}"]
            for bs, r in res["batch_sizes"].items()]
    out = [f"ONNX Runtime CPU, {res['images']} images, {res['repeats']} repeats",
           common.table(["batch", "bare img/s", "stage img/s", "stage/bare", "range", "in-pass", "range",
                         "forced overlap", "range", "null img/s"], rows), ""]
    sim = res["simulated_device"]
    rows = [[bs, f"{r['device_images_per_s']:.0f}", f"{r['serial']['median']:.3f}", _range(r["serial"]),
             f"{r['overlap']['median']:.3f}", _range(r["overlap"])] for bs, r in sim["batch_sizes"].items()]
    out += [(f"a device at the seed's {sim['device']} speed (null backend waiting), {sim['images']} images: "
             "in-pass efficiency"),
            common.table(["batch", "device img/s", "serial", "range", "overlap", "range"], rows)]
    return "\n".join(out)


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    cpu, sim = res["batch_sizes"], res["simulated_device"]["batch_sizes"]
    lines = [(f"infer stage/bare engine, batch {bs}", cpu[bs]["ratio"]) for bs in ("1", "8", "32") if bs in cpu]
    lines += [(f"infer in-pass efficiency, batch {bs}", cpu[bs]["in_pass"]) for bs in ("1", "8") if bs in cpu]
    lines += [(f"infer in-pass efficiency at 310P speed, batch {bs}, {k}", sim[bs][k])
              for bs in ("8",) if bs in sim for k in ("serial", "overlap")]
    return lines
