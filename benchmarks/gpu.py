"""On one NVIDIA GPU: ghostbench's infer stage against the bare engine call, a CUDA-graph engine and PyTorch.

For each batch size and precision, in one run:
  stage       : jobs.stages.infer on ``cuda:0`` (I/O binding, CUDA graph by default for a fixed batch):
                summary.json's ``throughput`` (device compute only) and end-to-end images/s
  bare        : the same engine with ONNX Runtime alone: input and output bound on the device, no graph,
                ``run_with_iobinding`` + synchronize in a loop (what ``throughput`` should match)
  graph       : the same with ``enable_cuda_graph=1``
  torch       : PyTorch eager model, CUDA graph replay (fp32; fp16 channels-last): the ceiling
Ratios printed are same-run: stage/bare and stage/graph (compute), end-to-end/compute.

Needs torch with CUDA and onnxruntime-gpu; on a machine without a GPU it says so and returns (exit 0).
Precision: fp32 (ONNX Runtime ``use_tf32=0``), tf32; fp16 only for torch here (ONNX Runtime CUDA runs the
float32 engine; fp16 engines go through TensorRT, which needs its own libraries).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np

from benchmarks import assets, common

BATCH_SIZES = (1, 8, 32, 128, 256)
PRECISIONS = ("fp32", "tf32")
ITERATIONS = 50


def unavailable() -> str | None:
    """Why this machine cannot run the benchmark (None: it can)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA device"
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return None


def _rate(fn, bs: int, iterations: int = ITERATIONS) -> float:
    for _ in range(5):
        fn()
    t0 = time.perf_counter()
    for _ in range(iterations):
        fn()
    return bs * iterations / (time.perf_counter() - t0)


def bare_ort(engine_path: str, bs: int, precision: str, graph: bool) -> float:
    import onnxruntime as ort

    opts = {"device_id": "0", "use_tf32": "1" if precision == "tf32" else "0"}
    if graph:
        opts["enable_cuda_graph"] = "1"
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(engine_path, so, providers=[("CUDAExecutionProvider", opts)])
    inp = sess.get_inputs()[0]
    x = ort.OrtValue.ortvalue_from_numpy(np.zeros((bs, 3, 224, 224), dtype=np.float32), "cuda", 0)
    y = ort.OrtValue.ortvalue_from_shape_and_type((bs, 1000), np.float32, "cuda", 0)
    io = sess.io_binding()
    io.bind_ortvalue_input(inp.name, x)
    io.bind_ortvalue_output(sess.get_outputs()[0].name, y)

    def step() -> None:
        sess.run_with_iobinding(io)
        io.synchronize_outputs()

    return _rate(step, bs)


def torch_graph(bs: int, half: bool) -> float:
    import torch

    from jobs import models

    net = models.build(models.get(assets.MODEL)).eval().cuda()
    x = torch.zeros(bs, 3, 224, 224, device="cuda")
    if half:
        net, x = net.half().to(memory_format=torch.channels_last), x.half().to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            net(x)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            net(x)

    def step() -> None:
        graph.replay()
        torch.cuda.synchronize()

    return _rate(step, bs)


def stage(work, engine_uri: str, data: str, bs: int, precision: str) -> dict[str, Any]:
    from jobs.stages import infer

    out = work / f"gpu-infer-{bs}-{precision}-{time.monotonic_ns()}"
    args = ["--engine", engine_uri, "--data", data, "--batch-size", str(bs), "--device", "cuda:0", "--precision",
            precision, "--min-batches", "20", "--min-seconds", "1", "--out", str(out), "--quiet"]
    assert infer.main(args) == 0, f"infer on cuda:0 failed: {args}"
    return json.loads((out / "summary.json").read_text())


def run(work, repeats: int = 3, images: int = 1024, batch_sizes: tuple[int, ...] = BATCH_SIZES) -> dict[str, Any]:
    why = unavailable()
    if why is not None:
        return {"available": False, "reason": why}
    import onnxruntime as ort
    import torch

    from jobs.stages import convert

    logging.getLogger("ghostbench").setLevel(logging.WARNING)
    data = str(assets.dataset(work, images, "float32", distinct=min(images, 256)))
    export = assets.export(work, "float32")
    res: dict[str, Any] = {"available": True, "device": torch.cuda.get_device_name(0),
                           "onnxruntime": ort.__version__, "torch": torch.__version__, "repeats": repeats,
                           "images": images, "runs": {}}
    for bs in batch_sizes:
        engine = work / f"gpu-engine-{bs}"
        assert convert.main(["--model", str(export), "--batch-size", str(bs), "--option", 'provider="cuda"',
                             "--out", str(engine), "--quiet"]) == 0
        engine_file = str(engine / "engine.onnx")
        for precision in PRECISIONS:
            m: dict[str, list[float]] = {k: [] for k in ("stage", "e2e", "bare", "graph")}
            for _ in range(repeats):
                s = stage(work, str(engine), data, bs, precision)
                m["stage"].append(s["throughput"])
                m["e2e"].append(s["end_to_end"]["images_per_second"])
                m["bare"].append(bare_ort(engine_file, bs, precision, graph=False))
                m["graph"].append(bare_ort(engine_file, bs, precision, graph=True))
            row = {k: common.summarize(v) for k, v in m.items()}
            row["stage_vs_bare"] = common.summarize([a / b for a, b in zip(m["stage"], m["bare"])])
            row["stage_vs_graph"] = common.summarize([a / b for a, b in zip(m["stage"], m["graph"])])
            row["e2e_vs_compute"] = common.summarize([a / b for a, b in zip(m["e2e"], m["stage"])])
            res["runs"][f"{bs}/{precision}"] = row
        res["runs"][f"{bs}/torch"] = {"fp32": common.summarize([torch_graph(bs, False) for _ in range(repeats)]),
                                      "fp16": common.summarize([torch_graph(bs, True) for _ in range(repeats)])}
    return res


def render(res: dict[str, Any]) -> str:
    if not res.get("available"):
        return f"no GPU here: {res['reason']}; skipped (run on a machine with one NVIDIA GPU)"
    rows = []
    for key, r in res["runs"].items():
        bs, kind = key.split("/")
        if kind == "torch":
            rows.append([bs, "torch graph", "-", "-", "-", f"{r['fp32']['median']:,.0f} / {r['fp16']['median']:,.0f}",
                         "-", "-", "-"])
            continue
        rows.append([bs, kind, f"{r['stage']['median']:,.0f}", f"{r['bare']['median']:,.0f}",
                     f"{r['graph']['median']:,.0f}", "-", f"{r['stage_vs_bare']['median']:.3f}",
                     f"{r['stage_vs_graph']['median']:.3f}", f"{r['e2e_vs_compute']['median']:.3f}"])
    return "\n".join([f"{res['device']}, onnxruntime {res['onnxruntime']}, torch {res['torch']}, {res['images']} "
                      f"images, {res['repeats']} repeats (images/s)",
                      common.table(["batch", "precision", "stage", "bare I/O", "CUDA graph", "torch fp32 / fp16",
                                    "stage/bare", "stage/graph", "e2e/compute"], rows)])


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    if not res.get("available"):
        return []
    return [(f"gpu stage/bare, {key}", r["stage_vs_bare"]) for key, r in res["runs"].items()
            if not key.endswith("torch") and key.split("/")[0] in ("8", "256")]
