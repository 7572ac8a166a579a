"""Stage ``export``: verified PyTorch weights -> ``model.onnx`` (opset 11 by default), with a parity check.

Seed step 3.1 (``ghostnet_pth2onnx.py``): TorchScript export with input ``image``, output ``class`` and a
dynamic batch axis. On top of the seed: the weights' checksum is verified before loading, the no-op
Slices of the ghost modules are removed (logits unchanged, about 1.5x faster on ONNX Runtime CPU),
normalization can be folded into the graph for uint8 input, and every export is compared with
PyTorch on a fixed batch; an export whose logits differ by more than 1e-4 of their range fails.

    python -m jobs.stages.export --model ghostnet_1.0x --weights URI --checksum md5:HEX --out URI

A model outside the registry comes with its card (``--card KEY=VALUE``, ``jobs.models.card``): a PyTorch factory
(``--factory package.module:function --weights URI``) is exported the same way; an ONNX file (``--onnx URI``)
is imported instead: checked against its card, its batch axis settled and, for uint8 input, normalization
folded in front (``jobs.models.onnx_import``); the record says what was found and what changed.
"""

from __future__ import annotations

import io
import logging
import pathlib
import sys
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

from jobs import errors, models, params
from jobs import store as store_mod
from jobs.artifacts import commit, records
from jobs.devices import cpu
from jobs.models import weights as weights_mod
from jobs.results import metrics
from jobs.stages import cli

log = logging.getLogger("ghostbench")

STAGE = "export"
MODEL_FILE = records.MODEL_FILE
RECORD_FILE = records.EXPORT_RECORD
INPUT_NAME = "image"
OUTPUT_NAME = "class"
PARITY_TOLERANCE = 1e-4  # max |torch - onnxruntime| / max |logit|
PARITY_SEED = 20240611


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise errors.MissingDependency(
            f"the export stage needs {module!r}; install ghostbench[export]") from e


def fold_normalization(net, mean, std):
    """A module taking uint8 NCHW pixels: ``(x - 255*mean) * (1 / (255*std))`` per channel, then ``net``.

    The constants are float32, so the whole normalization lives in the exported graph.
    """
    import torch

    class Uint8Input(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            shift = torch.tensor([255.0 * m for m in mean], dtype=torch.float32).view(1, -1, 1, 1)
            scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32).view(1, -1, 1, 1)
            self.register_buffer("shift", shift)
            self.register_buffer("scale", scale)

        def forward(self, x):
            return self.net((x.float() - self.shift) * self.scale)

    return Uint8Input().eval()


def _parity_pixels(batch: int, size: int):
    import numpy as np

    rng = np.random.default_rng(PARITY_SEED)
    return rng.integers(0, 256, size=(batch, 3, size, size), dtype=np.uint8)


def _normalize(pixels, mean, std):
    """The textbook recipe, in float64, as the reference for both input modes."""
    import numpy as np

    m = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
    return ((pixels.astype(np.float64) / 255.0 - m) / s).astype(np.float32)


def _torch_export(module, dummy, opset: int) -> bytes:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in torch >= 2.9 but is the only one that writes
        # opset 11; its deprecation notices are expected noise. Errors still raise.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.onnx.*")
        try:
            torch.onnx.export(
                module, (dummy,), buf, dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        except (torch.onnx.errors.UnsupportedOperatorError, torch.onnx.errors.OnnxExporterError) as e:
            raise errors.BadInput(f"--opset {opset}: export failed: {str(e).splitlines()[0]}") from e
    return buf.getvalue()


def _ort_logits(model_bytes: bytes, feed, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads  # the pod's CPU limit, not the node's cores
    session = ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: feed})[0]


def _parity(model_bytes: bytes, net, pixels, card, input_dtype: str, threads: int) -> dict[str, Any]:
    """torch's logits on the normalized pixels against the export's on its input (normalized, or the pixels)."""
    import torch

    normalized = _normalize(pixels, card.mean, card.std)
    with torch.no_grad():
        expected = net(torch.from_numpy(normalized)).numpy()
    actual = _ort_logits(model_bytes, pixels if input_dtype == "uint8" else normalized, threads)
    return _compare(expected, actual, "torch", card, "torch eval on (pixels/255 - mean)/std")


def _compare(expected, actual, who: str, card, reference: str) -> dict[str, Any]:
    """The parity record of ``actual`` (ONNX Runtime) against ``expected`` (``who``); ``BadInput`` when the logits
    are not ``[N, card.num_classes]``, ``GhostbenchError`` when either holds NaN or infinities."""
    import numpy as np

    if actual.ndim != 2 or actual.shape[1] != card.num_classes:
        raise errors.BadInput(f"--card num_classes: {card.num_classes}, but the model's logits have shape "
                              f"{list(actual.shape)} (expected [N, {card.num_classes}])")
    for name, logits in ((who, expected), ("onnxruntime", actual)):  # named, not "differs by nan"
        bad = metrics.nonfinite(logits)
        if bad is not None:
            raise errors.GhostbenchError(
                f"parity: {name}'s logits hold {bad.nan} NaN and {bad.posinf + bad.neginf} infinite value(s) for "
                f"{len(bad.rows)} of {len(logits)} image(s); nothing committed")
    diff = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    scale = float(np.max(np.abs(expected)))
    return {
        "batch": int(actual.shape[0]),
        "seed": PARITY_SEED,
        "reference": reference,
        "max_abs_diff": diff,
        "max_abs_logit": scale,
        "relative": diff / scale if scale > 0 else diff,
        "tolerance": PARITY_TOLERANCE,
        "top1_agreement": float(np.mean(metrics.top1(actual) == metrics.top1(expected))),
        "output_shape": list(actual.shape),
    }


def _io_desc(value_info) -> dict[str, Any]:
    import onnx

    t = value_info.type.tensor_type
    return {
        "name": value_info.name,
        "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
        "shape": [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim],
    }


def recorded_params(args: params.ExportParams) -> dict[str, Any]:
    """The parameters as the manifest records them: the weights' URI without credentials, the checksum in
    lower case (``cli.main`` compares a rerun's parameters with a committed output's in this form)."""
    algo, digest = weights_mod.parse_checksum(args.checksum, "--checksum")
    public = {f: weights_mod.public_uri(v) for f in ("weights", "onnx") if (v := getattr(args, f))}
    return {**args.to_dict(), **public, "checksum": f"{algo}:{digest}"}


def source_of(args: params.ExportParams) -> dict[str, Any]:
    """Where the model comes from, as the export record states it: ``{"kind": "registry" | "onnx" | "factory", ...}``."""
    if args.onnx:
        return {"kind": "onnx", "uri": weights_mod.public_uri(args.onnx)}
    if args.factory:
        return {"kind": "factory", "factory": args.factory}
    return {"kind": "registry", "factory": models.get(args.model).factory}


def run(args: params.ExportParams, out_store: store_mod.Store) -> None:
    card = models.resolve_card(args.model, args.card)
    if args.onnx:
        return _import_onnx(args, card, out_store)
    recorded = recorded_params(args)
    checksum = recorded["checksum"]
    torch = _require("torch")
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    from jobs.models import card as card_mod
    from jobs.models import onnx_graph

    # Threads for the container's CPU limit, not the node's cores (a pod limited to 4 CPUs on a 64-core node
    # would otherwise run 64 threads and be throttled): torch's pool and the parity session's.
    budget = cpu.available_cpus()
    torch.set_num_threads(budget.count)
    log.info("export: %d threads (%s)", budget.count, budget.source)

    weights_uri = recorded["weights"]
    with tempfile.TemporaryDirectory(prefix="ghostbench-weights-") as tmp:
        log.info("export: fetching weights %s", weights_uri)
        path = weights_mod.fetch(args.weights, checksum, pathlib.Path(tmp))
        log.info("export: loading %s into %s (strict)", path, card.name)
        state_dict = weights_mod.load_state_dict(path)
        net = card_mod.build_factory(args.factory) if args.factory else models.build(models.get(args.model))
        weights_mod.apply_state_dict(net, state_dict, weights_uri)
    net.eval()

    size = card.input_size
    if args.input_dtype == "uint8":
        module = fold_normalization(net, card.mean, card.std)
        dummy = torch.zeros(1, 3, size, size, dtype=torch.uint8)
    else:
        module = net
        dummy = torch.zeros(1, 3, size, size, dtype=torch.float32)
    log.info("export: torch.onnx.export (TorchScript, opset %d, %s input)", args.opset, args.input_dtype)
    exported = onnx.load_from_string(_torch_export(module, dummy, args.opset))
    nodes_before = len(exported.graph.node)

    removed: list[dict[str, Any]] = []
    if args.keep_noops:
        log.info("export: keeping no-op nodes (--keep-noops)")
    else:
        exported, removed = onnx_graph.remove_noop_slices(exported)
        log.info("export: removed %d no-op nodes (%d Slice), %d nodes left", len(removed),
                 sum(r["op"] == "Slice" for r in removed), len(exported.graph.node))
    onnx.checker.check_model(exported, full_check=True)
    model_bytes = exported.SerializeToString()

    log.info("export: parity check, torch vs onnxruntime on %d images", args.parity_batch)
    parity = _parity(model_bytes, net, _parity_pixels(args.parity_batch, size), card, args.input_dtype,
                     budget.count)
    log.info("export: parity max|diff| %.3g, max|logit| %.3g, relative %.3g, top-1 agreement %.0f%%",
             parity["max_abs_diff"], parity["max_abs_logit"], parity["relative"],
             100 * parity["top1_agreement"])
    if not parity["relative"] <= PARITY_TOLERANCE:
        raise errors.GhostbenchError(
            f"parity: onnxruntime differs from torch by {parity['relative']:.3g} of max |logit| "
            f"(tolerance {PARITY_TOLERANCE:g}); nothing committed")

    by_op: dict[str, int] = {}
    for r in removed:
        by_op[r["op"]] = by_op.get(r["op"], 0) + 1
    record = records.ExportRecord(
        model=card.name, opset=next(o.version for o in exported.opset_import if o.domain in ("", "ai.onnx")),
        input=_io_desc(exported.graph.input[0]), output=_io_desc(exported.graph.output[0]),
        weights={"uri": weights_uri, "checksum": checksum}, parity=parity, details={
        "normalization_folded": args.input_dtype == "uint8",
        "mean": list(card.mean),
        "std": list(card.std),
        **({"source": source_of(args), "card": card.to_dict()} if args.card else {}),
        "nodes_before": nodes_before,
        "nodes_after": len(exported.graph.node),
        "removed_count": len(removed),
        "constant_nodes_dropped": nodes_before - len(exported.graph.node) - len(removed),
        "removed_by_op": by_op,
        "removed": removed,
        "threads": budget.to_dict(),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
    })
    with commit.Output(out_store, STAGE, recorded, args.upstream()) as out:
        (out.dir / MODEL_FILE).write_bytes(model_bytes)
        (out.dir / RECORD_FILE).write_text(record.to_json())
        out.record.update(record.to_dict())
        log.info("export: wrote %s (%.1f MB) and %s", MODEL_FILE, len(model_bytes) / 1e6, RECORD_FILE)


def _import_onnx(args: params.ExportParams, card, out_store: store_mod.Store) -> None:
    """``--onnx``: the file verified, checked against the card, settled and committed as ``model.onnx`` with the
    export record (its ``import`` entry: what was found, what was changed); parity is the committed graph against
    the file's own graph on normalized pixels (the same graph for float32 input: the check that it runs)."""
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    from jobs.models import onnx_graph, onnx_import

    recorded = recorded_params(args)
    budget = cpu.available_cpus()
    with tempfile.TemporaryDirectory(prefix="ghostbench-onnx-") as tmp:
        log.info("export: fetching %s", recorded["onnx"])
        path = weights_mod.fetch(args.onnx, recorded["checksum"], pathlib.Path(tmp), what="--onnx")
        original = onnx_import.load(path, f"--onnx {recorded['onnx']}")
    facts = onnx_import.inspect(original, card.crop, card.num_classes, f"--onnx {recorded['onnx']}",
                                {"crop": "--card crop", "num_classes": "--card num_classes"})
    model, fixed_batch, changes = onnx_import.settle_batch(original, facts, card.crop, card.num_classes)
    for line in changes:
        log.info("export: %s", line)
    nodes_before = len(model.graph.node)
    removed: list[dict[str, Any]] = []
    if not args.keep_noops:
        model, removed = onnx_graph.remove_noop_slices(model)
    reference = model
    if args.input_dtype == "uint8":
        model = onnx_import.fold_uint8(model, card.mean, card.std)
        changes.append("normalization folded in front of the graph: uint8 NCHW pixels in")
    onnx.checker.check_model(model)
    model_bytes = model.SerializeToString()
    pixels = _parity_pixels(fixed_batch or args.parity_batch, card.crop)
    normalized = _normalize(pixels, card.mean, card.std)
    expected = _ort_logits(reference.SerializeToString(), normalized, budget.count)
    actual = _ort_logits(model_bytes, pixels if args.input_dtype == "uint8" else normalized, budget.count)
    parity = _compare(expected, actual, "the imported graph", card,
                      "the imported graph (ONNX Runtime) on (pixels/255 - mean)/std")
    if not parity["relative"] <= PARITY_TOLERANCE:
        raise errors.GhostbenchError(f"parity: the committed graph differs from the imported one by "
                                     f"{parity['relative']:.3g} of max |logit| (tolerance {PARITY_TOLERANCE:g}); "
                                     "nothing committed")
    record = records.ExportRecord(
        model=card.name, opset=onnx_import.opset_of(model), input=_io_desc(model.graph.input[0]),
        output=_io_desc(model.graph.output[0]), weights={"uri": recorded["onnx"], "checksum": recorded["checksum"]},
        parity=parity, details={
            "source": source_of(args), "card": card.to_dict(), "fixed_batch": fixed_batch,
            "import": {"found": facts.to_dict(), "changed": changes},
            "normalization_folded": args.input_dtype == "uint8", "mean": list(card.mean), "std": list(card.std),
            "nodes_before": nodes_before, "nodes_after": len(model.graph.node), "removed_count": len(removed),
            "removed": removed, "threads": budget.to_dict(),
            "versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__}})
    with commit.Output(out_store, STAGE, recorded, args.upstream()) as out:
        (out.dir / MODEL_FILE).write_bytes(model_bytes)
        (out.dir / RECORD_FILE).write_text(record.to_json())
        out.record.update(record.to_dict())
        log.info("export: imported %s as %s (%.1f MB) and %s", recorded["onnx"], MODEL_FILE, len(model_bytes) / 1e6,
                 RECORD_FILE)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(params.ExportParams, run, argv, record=recorded_params)


if __name__ == "__main__":
    sys.exit(main())
