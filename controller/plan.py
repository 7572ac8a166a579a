"""From a sweep spec to a graph of steps: a pure function, no I/O.

A step's key is a hash of everything its output depends on: the spec fields its stage uses,
the keys of the steps it reads from, and its stage's version. So a finished step is found by
its key and skipped; a sweep grown by one batch size runs one convert, one infer and the eval;
changing the weights checksum reruns export and everything downstream of it, nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import jobs
from controller import spec as spec_mod
from jobs import devices, models

KEY_LENGTH = 16


@dataclasses.dataclass(frozen=True)
class Step:
    key: str
    """Content key of the output; also its folder name under ``artifacts/<stage>/``."""
    stage: str
    """The ``jobs`` stage that runs it."""
    title: str
    """Human label, e.g. ``convert ort-cpu bs8``."""
    out: str
    """Output location, relative to the store root."""
    args: tuple[str, ...]
    """Stage arguments; the command is ``python -m jobs.<stage> *args`` with ``--out`` included."""
    deps: tuple[str, ...] = ()
    """Keys of the steps whose outputs this one reads."""
    device: str = "cpu"
    """Where it runs: 'cpu' for the CPU stages, else the inference target's device."""
    accelerator: str = ""
    """Catalogue name (``jobs.devices``) of the accelerator the step needs; empty for the CPU."""
    exclusive: bool = False
    """Run alone (inference: other work on the machine would disturb its timings)."""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    """target, batch_size, shard, input_mode: for executors (Job labels) and reports."""

    @property
    def log(self) -> str:
        return self.out + ".log"

    def command(self) -> list[str]:
        return ["-m", f"jobs.{self.stage}", *self.args]


@dataclasses.dataclass(frozen=True)
class Plan:
    sweep: str
    store: str
    steps: tuple[Step, ...]
    """In dependency order: every step comes after the steps it depends on."""

    def by_key(self) -> dict[str, Step]:
        return {s.key: s for s in self.steps}

    def to_dict(self) -> dict[str, Any]:
        return {"sweep": self.sweep, "steps": [dataclasses.asdict(s) for s in self.steps]}


def _key(stage: str, fields: dict[str, Any], deps: list[str]) -> str:
    material = json.dumps({"stage": stage, "version": jobs.STAGE_VERSIONS[stage], "fields": fields,
                           "deps": deps}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:KEY_LENGTH]


def _uri(store: str, name: str) -> str:
    return store.rstrip("/") + "/" + name


def _options(options: dict[str, Any]) -> list[str]:
    args = []
    for k in sorted(options):
        args += ["--option", f"{k}={json.dumps(options[k])}"]
    return args


def _aipp(t: spec_mod.TargetSpec) -> bool:
    """ATC with uint8 input normalizes on the chip (AIPP) unless the sweep says otherwise."""
    return t.engine == "atc" and bool(t.convert_options.get("aipp", t.input_mode == "uint8"))


def _export_mode(t: spec_mod.TargetSpec) -> str:
    """The export a target's engine is built from: AIPP needs the float32 model (the uint8 export
    already normalizes in the graph, and AIPP would normalize a second time)."""
    return "float32" if _aipp(t) else t.input_mode


def _convert_options(t: spec_mod.TargetSpec) -> dict[str, Any]:
    """The converter's options: the sweep's, plus for ATC the accelerator's soc_version and AIPP."""
    options = dict(t.convert_options)
    if t.engine == "atc":
        if "soc_version" not in options and t.accelerator:
            options["soc_version"] = devices.get(t.accelerator).soc_version
        if _aipp(t):
            options["aipp"] = True
    return options


def make_plan(spec: spec_mod.SweepSpec, store: str | None = None) -> Plan:
    """The steps of a sweep, with output locations under ``store`` (default: the spec's)."""
    store = store or spec.store
    info = models.get(spec.model.name)
    weights = spec.model.weights or info.weights_uri
    checksum = (spec.model.checksum or info.checksum).lower()
    steps: list[Step] = []
    modes = list(dict.fromkeys(t.input_mode for t in spec.targets))

    exports: dict[str, Step] = {}
    for mode in dict.fromkeys(_export_mode(t) for t in spec.targets if t.backend != "null"):  # null needs no model
        fields = {"model": info.name, "checksum": checksum, "opset": spec.model.opset, "input_dtype": mode}
        key = _key("export", fields, [])
        out = f"artifacts/export/{key}"
        exports[mode] = Step(key, "export", f"export {mode}", out, (
            "--model", info.name, "--weights", weights, "--checksum", checksum, "--opset", str(spec.model.opset),
            "--input-dtype", mode, "--out", _uri(store, out)), labels={"input_mode": mode})
        steps.append(exports[mode])

    preprocess_roots: dict[str, tuple[str, list[str]]] = {}
    ds = spec.dataset
    for mode in modes:
        fields = {"images": ds.images, "labels": ds.labels, "limit": ds.limit, "shards": ds.shards,
                  "skip_bad": ds.skip_bad, "mode": mode,
                  "recipe": [info.resize_short, info.crop, list(info.mean), list(info.std), info.interpolation]}
        if ds.pipeline != "seed":  # keys of the default pipeline stay as they were
            fields["pipeline"] = ds.pipeline
        root_key = _key("preprocess", fields, [])
        root = f"artifacts/preprocess/{root_key}"
        shard_keys = []
        for i in range(ds.shards):
            shard_name = f"shard-{i:05d}-of-{ds.shards:05d}"
            key = _key("preprocess", {"root": root_key, "shard": i}, [])
            args = ["--images", ds.images, "--labels", ds.labels, "--shard", str(i), "--num-shards", str(ds.shards),
                    "--mode", mode, "--model", info.name, "--out", _uri(store, root)]
            if ds.limit is not None:
                args += ["--limit", str(ds.limit)]
            if ds.skip_bad:
                args.append("--skip-bad")
            if ds.pipeline != "seed":
                args += ["--pipeline", ds.pipeline]
            steps.append(Step(key, "preprocess", f"preprocess {mode} shard {i + 1}/{ds.shards}",
                              f"{root}/{shard_name}", tuple(args),
                              labels={"input_mode": mode, "shard": str(i)}))
            shard_keys.append(key)
        preprocess_roots[mode] = (root, shard_keys)

    infers: list[Step] = []
    timing = spec.timing
    for t in spec.targets:
        data_root, shard_keys = preprocess_roots[t.input_mode]
        for bs in t.batch_sizes:
            labels = {"target": t.name, "batch_size": str(bs), "input_mode": t.input_mode}
            engine_args: list[str] = []
            deps = list(shard_keys)
            if t.backend != "null":
                export = exports[_export_mode(t)]
                options = _convert_options(t)
                # A dynamic-batch engine serves every batch size: one convert step (same key) for all.
                dynamic = options.get("dynamic_batch_sizes")
                cbs = max(dynamic) if dynamic else bs
                fields = {"engine": t.engine, "batch_size": cbs, "options": options}
                ckey = _key("convert", fields, [export.key])
                cout = f"artifacts/convert/{ckey}"
                title = f"convert {t.name} " + ("dynamic" if dynamic else f"bs{bs}")
                if t.engine == "atc":
                    title += f" (.om, {options.get('soc_version', '?')})"
                steps.append(Step(ckey, "convert", title, cout, (
                    "--model", _uri(store, export.out), "--target", t.engine, "--batch-size", str(cbs),
                    *_options(options), "--out", _uri(store, cout)), deps=(export.key,), labels=labels))
                engine_args = ["--engine", _uri(store, cout)]
                deps = [ckey, *shard_keys]
            fields = {"backend": t.backend, "device": t.device, "batch_size": bs, "options": t.backend_options,
                      "name": t.name, "timing": dataclasses.asdict(timing), "accelerator": t.accelerator}
            ikey = _key("infer", fields, deps)
            iout = f"artifacts/infer/{ikey}"
            step = Step(ikey, "infer", f"infer {t.name} bs{bs}", iout, (
                *engine_args, "--data", _uri(store, data_root), "--backend", t.backend, "--device", t.device,
                "--batch-size", str(bs), *_options(t.backend_options), "--target-name", t.name,
                "--warmup", str(timing.warmup), "--min-batches", str(timing.min_batches),
                "--min-seconds", str(timing.min_seconds), "--out", _uri(store, iout)),
                deps=tuple(deps), device=t.device, accelerator=t.accelerator, exclusive=True, labels=labels)
            infers.append(step)
            steps.append(step)

    ref = spec.reference
    top1 = ref.top1 if ref.top1 is not None else info.published_top1
    top5 = ref.top5 if ref.top5 is not None else info.published_top5
    fields = {"model": info.name, "top1": top1, "top5": top5, "gate": ref.gate, "kind": ref.kind}
    accelerators = {t.name: t.accelerator for t in spec.targets if t.accelerator}
    if spec.report.ratios:  # only when set, so that sweeps without them keep their keys
        fields["ratios"] = list(spec.report.ratios)
    if accelerators:
        fields["accelerators"] = accelerators
    ekey = _key("eval", fields, [s.key for s in infers])
    eout = f"artifacts/eval/{ekey}"
    label_root = preprocess_roots[modes[0]][0]
    eargs = ["--data", _uri(store, label_root), "--model", info.name, "--reference-top1", str(top1),
             "--reference-top5", str(top5), "--reference-kind", ref.kind, "--gate", str(ref.gate)]
    for s in infers:
        eargs += ["--run", _uri(store, s.out)]
    for ratio in spec.report.ratios:
        eargs += ["--ratio", ratio]
    for name, acc in accelerators.items():
        eargs += ["--accelerator", f"{name}={acc}"]
    eargs += ["--out", _uri(store, eout)]
    steps.append(Step(ekey, "eval", "eval", eout, tuple(eargs),
                      deps=tuple(s.key for s in infers) + tuple(preprocess_roots[modes[0]][1])))
    return Plan(sweep=spec.name, store=store, steps=tuple(_dedupe(steps)))


def _dedupe(steps: list[Step]) -> list[Step]:
    """Two targets may share a step (same engine, say): keep the first of each key."""
    seen: set[str] = set()
    out = []
    for s in steps:
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out
