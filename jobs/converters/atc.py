"""Ascend ATC engine: ``model.onnx`` -> ``ghostnet_bsN.om`` (``<model>_bsN.om`` for another model) for one
``soc_version`` (seed step 3.2).

Runs ATC with the seed's arguments, built as a list (never a shell string); options (``soc_version``,
``aipp``, ``dynamic_batch_sizes``, ``timeout_s``, ``log``, ``precision_mode``) are checked by ``AtcOptions``
without the toolkit. The engine is committed only when ATC exited 0 and wrote the ``.om``; otherwise its
log is kept and named. Options, guarantees and the AIPP layout: ``docs/ascend.md`` ("Convert: the atc
target").
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import platform
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from jobs import errors, models, registry
from jobs.artifacts import records
from jobs.devices import npu_smi

log = logging.getLogger("ghostbench.convert.atc")

ENGINE_STEM = "ghostnet"
LOG_FILE = "atc.log"
AIPP_FILE = "aipp.cfg"
DEFAULT_TIMEOUT_S = 1800.0
LOG_LEVELS = ("debug", "info", "warning", "error", "null")
PRECISION_MODES = ("force_fp32", "force_fp16", "allow_fp32_to_fp16", "must_keep_origin_dtype",
                   "allow_mix_precision")
# a target's precision -> the precision modes that compute in it, the first being the one used by default
PRECISION_MODES_BY_PRECISION = {"fp32": ("must_keep_origin_dtype", "force_fp32"),
                                "fp16": ("force_fp16", "allow_fp32_to_fp16", "allow_mix_precision")}
OPTIONS = ("soc_version", "aipp", "dynamic_batch_sizes", "timeout_s", "log", "precision_mode", "max_opset")
MIN_OPSET = 9
"""The lowest ONNX opset ATC takes (CANN 5.x accepts opset 9-13; CANN 7 and later up to 18)."""
DEFAULT_MAX_OPSET = 13
"""The highest by default: the seed's toolkit (CANN 5.1); ``max_opset`` up to ``LATEST_MAX_OPSET`` for CANN 7+."""
LATEST_MAX_OPSET = 18
NOT_INSTALLED = "atc is not installed here; this stage runs in the ATC image (images/atc)"
KEPT_LOGS = "ghostbench-atc-logs"
MODEL = "ghostnet_1.0x"  # the normalization AIPP applies when the export record gives none (the seed's)
# Where the recorded argument list says the files were: the export's and this engine's folders.
EXPORT_PLACEHOLDER = "<export>"
ENGINE_PLACEHOLDER = "<engine>"
_SOC_RE = re.compile(r"^Ascend[0-9A-Za-z]+$")


@dataclasses.dataclass(frozen=True)
class AtcOptions:
    """The converter's options, validated without running anything."""

    soc_version: str
    """ATC's ``--soc_version``, or ``auto`` (read from ``npu-smi info``)."""
    aipp: bool = False
    """Generate a static AIPP config: uint8 RGB in, normalization on the chip."""
    dynamic_batch_sizes: tuple[int, ...] = ()
    """Batch sizes of a dynamic-batch ``.om``; empty for a fixed batch size."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    """ATC is killed after this many seconds."""
    log: str = "error"
    """ATC's ``--log`` level."""
    precision_mode: str = "must_keep_origin_dtype"
    """ATC's ``--precision_mode``, always passed (ATC's own default, force_fp16, is not what fp32 means)."""
    precision: str = "fp32"
    """The target's precision the mode was chosen for."""
    max_opset: int = DEFAULT_MAX_OPSET
    """The highest ONNX opset the toolkit takes: 13 for CANN 5.x (the seed's), up to 18 for CANN 7 and later."""

    @classmethod
    def opsets(cls, options: Mapping[str, Any]) -> tuple[int, int | None]:
        """(lowest, highest) ONNX opset this target converts with these options."""
        top = options.get("max_opset", DEFAULT_MAX_OPSET)
        return MIN_OPSET, top if isinstance(top, int) and not isinstance(top, bool) else DEFAULT_MAX_OPSET

    @classmethod
    def check(cls, options: Mapping[str, Any], batch_size: int, precision: str = "fp32") -> AtcOptions:
        """The options, checked without running anything; ``errors.OptionError`` naming the option.

        ``precision`` sets ``--precision_mode`` (fp32: must_keep_origin_dtype; fp16: force_fp16, ATC's default and
        the seed's); an explicit ``precision_mode`` option must compute in the same precision."""
        if precision not in PRECISION_MODES_BY_PRECISION:
            raise errors.OptionError("precision", f"expected one of {', '.join(PRECISION_MODES_BY_PRECISION)} for "
                                     f"engine atc, got {precision!r}")
        registry.check_option_names(options, OPTIONS)
        soc = options.get("soc_version")
        if soc is None:
            raise errors.OptionError("soc_version", "required (e.g. Ascend310P3, or auto to read it from npu-smi "
                                     "info); a sweep passes its target accelerator's")
        if not isinstance(soc, str) or not (soc == "auto" or _SOC_RE.match(soc)):
            raise errors.OptionError("soc_version", f"expected auto or a chip name like Ascend310P3, got {soc!r}")
        aipp = options.get("aipp", False)
        if not isinstance(aipp, bool):
            raise errors.OptionError("aipp", f"expected true or false, got {aipp!r}")
        sizes = options.get("dynamic_batch_sizes", [])
        if (not isinstance(sizes, (list, tuple))
                or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes)
                or len(set(sizes)) != len(sizes)):
            raise errors.OptionError("dynamic_batch_sizes", f"expected a list of distinct integers >= 1, got {sizes!r}")
        if sizes and batch_size not in sizes:
            raise errors.OptionError("dynamic_batch_sizes", f"batch size {batch_size} is not one of {list(sizes)}")
        timeout = options.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise errors.OptionError("timeout_s", f"expected a number of seconds > 0, got {timeout!r}")
        level = options.get("log", "error")
        if level not in LOG_LEVELS:
            raise errors.OptionError("log", f"expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
        mode = options.get("precision_mode", PRECISION_MODES_BY_PRECISION[precision][0])
        if mode not in PRECISION_MODES:
            raise errors.OptionError("precision_mode", f"expected one of {', '.join(PRECISION_MODES)}, got {mode!r}")
        if mode not in PRECISION_MODES_BY_PRECISION[precision]:
            raise errors.OptionError("precision_mode", f"{mode!r} does not compute in {precision}; for {precision} "
                                     f"use one of {', '.join(PRECISION_MODES_BY_PRECISION[precision])}")
        top = options.get("max_opset", DEFAULT_MAX_OPSET)
        if isinstance(top, bool) or not isinstance(top, int) or not DEFAULT_MAX_OPSET <= top <= LATEST_MAX_OPSET:
            raise errors.OptionError("max_opset", f"expected {DEFAULT_MAX_OPSET} (CANN 5.x) to {LATEST_MAX_OPSET} "
                                     f"(CANN 7 and later), got {top!r}")
        return cls(soc_version=soc, aipp=aipp, dynamic_batch_sizes=tuple(sorted(sizes)), timeout_s=float(timeout),
                   log=level, precision_mode=mode, precision=precision, max_opset=top)


def engine_stem(model_name: str | None) -> str:
    """The ``.om`` file's stem for a model: ``ghostnet`` for the seed's (and when the export record names none), else
    the model's name with every character but letters, digits, ``_`` and ``-`` made ``_`` (``resnet50``,
    ``my_net_v2`` for ``my.net v2``)."""
    if model_name is None or model_name == MODEL:
        return ENGINE_STEM
    return re.sub(r"[^A-Za-z0-9_-]", "_", model_name) or ENGINE_STEM


def output_prefix(batch_size: int, dynamic_batch_sizes: Sequence[int] = (), stem: str = ENGINE_STEM) -> str:
    """ATC's ``--output`` name: ``ghostnet_bsN`` as the seed, ``ghostnet_dynamic`` for a dynamic batch; ``stem``
    (``engine_stem``) in place of ``ghostnet`` for another model."""
    return f"{stem}_dynamic" if dynamic_batch_sizes else f"{stem}_bs{batch_size}"


def build_args(model: str, output: str, batch_size: int, soc_version: str, opts: AtcOptions,
               aipp_config: str | None = None, input_name: str = "image", channels: int = 3,
               size: int = 224) -> list[str]:
    """ATC's argument list (``argv[0]`` is ``atc``), in the seed's order; nothing is quoted or joined."""
    dynamic = bool(opts.dynamic_batch_sizes)
    batch = "-1" if dynamic else str(batch_size)
    args = ["atc", "--framework=5", f"--model={model}", "--input_format=NCHW",
            f"--input_shape={input_name}:{batch},{channels},{size},{size}"]
    if dynamic:
        args.append("--dynamic_batch_size=" + ",".join(str(b) for b in opts.dynamic_batch_sizes))
    args += [f"--output={output}", f"--log={opts.log}", f"--soc_version={soc_version}"]
    if aipp_config is not None:
        args.append(f"--insert_op_conf={aipp_config}")
    args.append(f"--precision_mode={opts.precision_mode}")
    return args


def aipp_values(normalization: tuple[Sequence[float], Sequence[float]] | None = None) -> dict[str, list[float]]:
    """AIPP's per-channel constants for the model's (mean, std) on the 0..1 scale (None: the seed's GhostNet recipe):
    out = (pixel - min_chn) * var_reci_chn.

    With pixels in 0..255: ``min_chn = 255 * mean`` and ``var_reci_chn = 1 / (255 * std)``, which
    equals the seed's ``(pixel / 255 - mean) / std``.
    """
    if normalization is None:
        info = models.get(MODEL)
        normalization = (info.mean, info.std)
    mean, std = normalization
    return {"min_chn": [round(255.0 * m, 6) for m in mean],
            "var_reci_chn": [round(1.0 / (255.0 * s), 10) for s in std]}


def aipp_config(size: int, normalization: tuple[Sequence[float], Sequence[float]] | None = None) -> str:
    """The static AIPP config for RGB888_U8 input of ``size`` x ``size`` pixels (ATC ``--insert_op_conf``), with the
    model's (mean, std) (None: the seed's)."""
    v = aipp_values(normalization)
    lines = [
        "# ghostbench: on-chip normalization of uint8 RGB pixels (ATC --insert_op_conf).",
        "# The model then takes uint8 NHWC [N, H, W, 3]; per channel (R, G, B):",
        "#   out = (pixel - mean_chn - min_chn) * var_reci_chn = (pixel / 255 - mean) / std",
        "aipp_op {",
        "    aipp_mode : static",
        "    related_input_rank : 0",
        "    input_format : RGB888_U8",
        f"    src_image_size_w : {size}",
        f"    src_image_size_h : {size}",
        "    crop : false",
        "    csc_switch : false",
        "    rbuv_swap_switch : false",
        "    ax_swap_switch : false",
    ]
    lines += [f"    mean_chn_{i} : 0" for i in range(3)]
    lines += [f"    min_chn_{i} : {x:g}" for i, x in enumerate(v["min_chn"])]
    lines += [f"    var_reci_chn_{i} : {x:.10f}" for i, x in enumerate(v["var_reci_chn"])]
    lines.append("}")
    return "\n".join(lines) + "\n"


def soc_from_host(timeout_s: float = 60.0) -> str:
    """``soc_version: auto``: the chip named by ``npu-smi info`` on this machine (``BadInput`` when it cannot tell)."""
    try:
        text = npu_smi.run_info(timeout_s=timeout_s)
    except errors.BadInput as e:
        raise errors.BadInput(f"atc option soc_version auto: {e}; a pod needs /usr/local/bin/npu-smi mounted, or set "
                              "soc_version explicitly") from e
    return npu_smi.soc_version(text)


def atc_version(atc_path: str) -> str | None:
    """The CANN version of the toolkit ``atc`` belongs to, from its ``version.info`` (None if not found)."""
    real = pathlib.Path(atc_path).resolve()
    for parent in list(real.parents)[:4]:
        for name in ("version.info", "ascend_toolkit_install.info"):
            path = parent / name
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            m = re.search(r"^\s*version\s*=\s*(\S+)", text, re.IGNORECASE | re.MULTILINE)
            if m:
                return m.group(1)
    return None


@dataclasses.dataclass(frozen=True)
class ModelInput:
    name: str
    dtype: str
    channels: int
    size: int
    output: str
    opset: int = 0


def inspect_model(model_path: pathlib.Path) -> ModelInput:
    """The exported model's image input: name, element type, channels and size."""
    try:
        import onnx
    except ImportError as e:
        raise errors.MissingDependency("the atc target reads the exported model with onnx; install it with: "
                                       "pip install 'ghostbench[convert]'") from e
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - onnx raises protobuf's and its own errors for a bad file
        raise errors.BadInput(f"{model_path.name}: not a readable ONNX model ({e})") from e
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1 or not model.graph.output:
        raise errors.BadInput(f"{model_path.name}: expected one image input and an output, found "
                              f"{len(inputs)} inputs")
    inp = inputs[0]
    t = inp.type.tensor_type
    dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.UINT8: "uint8"}.get(t.elem_type)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if dtype is None or len(dims) != 4 or None in dims[1:] or dims[2] != dims[3]:
        raise errors.BadInput(f"{model_path.name}: input {inp.name!r} is not a float32 or uint8 NCHW square image "
                              f"(type {t.elem_type}, shape {dims})")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ModelInput(name=inp.name, dtype=dtype, channels=int(dims[1]), size=int(dims[2]),
                      output=model.graph.output[0].name, opset=opset)


def _run(argv: list[str], log_path: pathlib.Path, timeout_s: float, cwd: pathlib.Path) -> tuple[int | None, float]:
    """Run ATC with its output in ``log_path``; (exit code, or None when it was killed at the timeout; seconds)."""
    t0 = time.perf_counter()
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
        except BaseException:  # interrupted: never leave ATC's compiler processes behind
            _kill_group(proc)
            raise
    return code, time.perf_counter() - t0


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill ATC and the compiler processes it started (its own session and process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _keep_log(log_path: pathlib.Path, prefix: str, soc: str) -> pathlib.Path:
    """Copy the log of a failed run out of the staging folder (which is removed), and return its path."""
    kept_dir = pathlib.Path(tempfile.gettempdir()) / KEPT_LOGS
    kept_dir.mkdir(parents=True, exist_ok=True)
    kept = kept_dir / f"{prefix}-{soc}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    shutil.copyfile(log_path, kept)
    tail = log_path.read_text(errors="replace").splitlines()[-10:]
    for line in tail:
        log.error("atc | %s", line)
    return kept


def _placeholders(args: list[str], model_path: pathlib.Path, out_dir: pathlib.Path) -> list[str]:
    """The argument list as recorded: local paths replaced by ``<export>/`` and ``<engine>/``."""
    out = []
    for a in args:
        a = a.replace(str(model_path), f"{EXPORT_PLACEHOLDER}/model.onnx")
        out.append(a.replace(str(out_dir), ENGINE_PLACEHOLDER))
    return out


def convert(model_path: pathlib.Path, out_dir: pathlib.Path, batch_size: int, options: dict,
            precision: str = "fp32", normalization: tuple[Sequence[float], Sequence[float]] | None = None,
            model_name: str | None = None) -> records.EngineRecord:
    """Build the ``.om`` in ``out_dir``: ``--input_shape`` from the graph's input name and size, AIPP (with
    ``aipp``) from ``normalization``, the file named after ``model_name`` (``engine_stem``: ``ghostnet_bsN.om`` for
    the seed's); ``BadInput`` for options, a model or an opset ATC cannot take."""
    opts = AtcOptions.check(options, batch_size, precision)
    atc = shutil.which("atc")
    if atc is None:
        raise errors.BadInput(NOT_INSTALLED)
    if opts.soc_version == "auto":
        soc, soc_from = soc_from_host(), "npu-smi info"
    else:
        soc, soc_from = opts.soc_version, "option"
    model = inspect_model(model_path)
    if not MIN_OPSET <= model.opset <= opts.max_opset:
        raise errors.BadInput(f"{model_path.name}: opset {model.opset}; atc takes opset {MIN_OPSET} to "
                              f"{opts.max_opset} (option max_opset: up to {LATEST_MAX_OPSET} for CANN 7 and later)")
    if opts.aipp and model.dtype != "float32":
        raise errors.BadInput(f"{model_path.name}: aipp=true needs the float32 export; this one takes "
                              f"{model.dtype} and already normalizes in the graph (AIPP would normalize twice)")
    if opts.aipp and model.channels != 3:
        raise errors.BadInput(f"{model_path.name}: AIPP RGB888_U8 needs 3 channels, the model takes {model.channels}")

    out_dir = out_dir.resolve()
    prefix = output_prefix(batch_size, opts.dynamic_batch_sizes, engine_stem(model_name))
    aipp_path = None
    if opts.aipp:
        aipp_path = out_dir / AIPP_FILE
        aipp_path.write_text(aipp_config(model.size, normalization))
    args = build_args(str(model_path), str(out_dir / prefix), batch_size, soc, opts,
                      aipp_config=str(aipp_path) if aipp_path else None, input_name=model.name,
                      channels=model.channels, size=model.size)
    recorded = _placeholders(args, model_path, out_dir)
    log_path = out_dir / LOG_FILE
    log_path.write_text("$ " + shlex.join([atc, *args[1:]]) + "\n")
    version = atc_version(atc)
    log.info("convert: atc %s for %s, batch %s%s", version or "(version unknown)", soc,
             ",".join(map(str, opts.dynamic_batch_sizes)) or batch_size, " with AIPP" if opts.aipp else "")
    with tempfile.TemporaryDirectory(prefix="ghostbench-atc-") as scratch:
        # ATC drops fusion_result.json and kernel_meta/ in its working directory: not in the engine.
        code, seconds = _run([atc, *args[1:]], log_path, opts.timeout_s, pathlib.Path(scratch))
    om = out_dir / f"{prefix}.om"
    if code is None:
        kept = _keep_log(log_path, prefix, soc)
        raise errors.GhostbenchError(f"atc did not finish within timeout_s={opts.timeout_s:g} s and was killed; "
                                     f"nothing committed; its log: {kept}")
    if code != 0:
        kept = _keep_log(log_path, prefix, soc)
        raise errors.GhostbenchError(f"atc failed (exit code {code}) building {prefix}.om for {soc}; nothing "
                                     f"committed; its log: {kept}")
    if not om.is_file() or om.stat().st_size == 0:
        kept = _keep_log(log_path, prefix, soc)
        raise errors.GhostbenchError(f"atc exited 0 but wrote no {prefix}.om; nothing committed; its log: {kept}")

    dynamic = list(opts.dynamic_batch_sizes) or None
    batch = None if dynamic else batch_size
    size, ch = model.size, model.channels
    if opts.aipp:
        om_input = {"name": model.name, "dtype": "uint8", "format": "NHWC", "shape": [batch, size, size, ch]}
        normalized_by = "AIPP on the chip (aipp.cfg); the .om takes uint8 RGB pixels"
    else:
        om_input = {"name": model.name, "dtype": model.dtype, "format": "NCHW", "shape": [batch, ch, size, size]}
        normalized_by = ("in the graph (uint8 export)" if model.dtype == "uint8"
                         else "none: the data are normalized float32 tensors")
    return records.EngineRecord(target="atc", file=om.name, batch_size=batch, input=om_input, details={
        "dynamic_batch_sizes": dynamic,
        "soc_version": soc,
        "soc_version_from": soc_from,
        "data_layout": "NCHW",
        "output": {"name": model.output},
        "normalization": normalized_by,
        "aipp": ({"file": AIPP_FILE, "input_format": "RGB888_U8", "src_image_size": [size, size],
                  **aipp_values(normalization)} if opts.aipp else None),
        "precision": opts.precision,
        "precision_mode": opts.precision_mode,
        "atc": {"args": recorded, "version": version, "exit_code": code, "seconds": round(seconds, 3),
                "timeout_s": opts.timeout_s, "log": LOG_FILE},
        "built_with": {"atc": version, "machine": platform.machine()},
    })
