"""From a sweep spec to a graph of steps: a pure function, no I/O.

Each step carries its stage's typed parameters (``jobs.params``): the command it runs, its Job's
labels and its content key all come from them. The key hashes the stage, the stage's version, the
parameters that determine the output (not where it goes, not where the upstream outputs are: their
keys stand for them) and the upstream keys. So a finished step is found by its key and skipped; a
sweep grown by one batch size runs one convert, one infer and the eval; changing the weights checksum
reruns export and everything downstream of it, nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
from typing import Any

import jobs
from controller import models_spec
from controller import spec as spec_mod
from jobs import models, params
from jobs.artifacts import shards

KEY_LENGTH = 16


@dataclasses.dataclass(frozen=True)
class Step:
    key: str
    """Content key of the output; also its folder name under ``artifacts/<stage>/``."""
    params: params.StageParams
    """The stage and everything it is run with: the one source of its command, labels and key."""
    title: str
    """Human label, e.g. ``convert ort-cpu bs8``."""
    out: str
    """Output location, relative to the store root (for a shard: below ``params.out``)."""
    deps: tuple[str, ...] = ()
    """Keys of the steps whose outputs this one reads."""
    accelerator: str | None = None
    """Catalogue name (``jobs.devices``) of the accelerator the step needs; None for the CPU."""
    target: str | None = None
    """The sweep target the step serves (convert, infer), for labels and reports."""
    input_mode: str | None = None
    """float32 or uint8, where the step is specific to one."""

    @property
    def stage(self) -> str:
        return self.params.stage

    @property
    def exclusive(self) -> bool:
        """Run alone: an inference step's timings must not share the machine with other work."""
        return self.stage == "infer"

    @property
    def log(self) -> str:
        return self.out + ".log"

    @property
    def group(self) -> str:
        """The key a Job is named by: the step's own, or for a preprocessing shard the key of the output root
        its sibling shards share (one Indexed Job runs them all)."""
        if isinstance(self.params, params.PreprocessParams):
            return posixpath.basename(self.params.out.rstrip("/"))
        return self.key

    def command(self) -> list[str]:
        """Arguments of ``python`` that run the step: ``-m jobs.stages.<stage> ...``."""
        return self.params.command()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "stage": self.stage, "title": self.title, "out": self.out, "deps": list(self.deps),
                "accelerator": self.accelerator, "target": self.target, "input_mode": self.input_mode,
                "params": self.params.to_dict(), "command": self.command()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        return cls(key=d["key"], params=params.STAGES[d["stage"]].from_dict(d["params"]), title=d["title"],
                   out=d["out"], deps=tuple(d["deps"]), accelerator=d.get("accelerator"), target=d.get("target"),
                   input_mode=d.get("input_mode"))


@dataclasses.dataclass(frozen=True)
class Plan:
    sweep: str
    store: str
    steps: tuple[Step, ...]
    """In dependency order: every step comes after the steps it depends on."""

    def by_key(self) -> dict[str, Step]:
        return {s.key: s for s in self.steps}

    def to_dict(self) -> dict[str, Any]:
        """``plan.json``."""
        return {"sweep": self.sweep, "store": self.store, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(sweep=d["sweep"], store=d["store"], steps=tuple(Step.from_dict(s) for s in d["steps"]))


def content_key(stage: str, fields: dict[str, Any], deps: list[str]) -> str:
    material = json.dumps({"stage": stage, "version": jobs.STAGE_VERSIONS[stage], "fields": fields,
                           "deps": deps}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:KEY_LENGTH]


def _uri(store: str, name: str) -> str:
    return store.rstrip("/") + "/" + name


def export_mode(t: spec_mod.TargetSpec) -> str:
    """The export a target's engine is built from: AIPP needs the float32 model (the uint8 export
    already normalizes in the graph, and AIPP would normalize a second time)."""
    return "float32" if spec_mod.aipp(t) else t.input_mode


def make_plan(spec: spec_mod.SweepSpec, store: str | None = None) -> Plan:
    """The steps of a sweep, with output locations under ``store`` (default: the spec's).

    Every step's parameters are validated here (``BadInput``), so nothing starts that its stage would refuse.
    """
    store = store or spec.store
    model = spec.model
    card = models_spec.card(model)
    if model.source == "registry":  # the registry's weights unless the sweep names others; no card on the command
        info = models.get(model.name)
        weights: str | None = model.weights or info.weights_uri
        checksum = (model.checksum or info.checksum).lower()
        card_args = None
    else:
        weights, checksum, card_args = model.weights, (model.checksum or "").lower(), card.to_dict()
    steps: list[Step] = []
    modes = list(dict.fromkeys(t.input_mode for t in spec.targets))

    def add(step: Step) -> Step:
        step.params.validate()
        steps.append(step)
        return step

    exports: dict[str, Step] = {}
    for mode in dict.fromkeys(export_mode(t) for t in spec.targets if t.backend != "null"):  # null needs no model
        p = params.ExportParams(model=model.name, weights=weights, checksum=checksum, opset=model.opset,
                                input_dtype=mode, onnx=model.onnx, factory=model.factory, card=card_args, out="")
        key = content_key("export", p.key_fields(), [])
        out = f"artifacts/export/{key}"
        exports[mode] = add(Step(key, dataclasses.replace(p, out=_uri(store, out)), f"export {mode}", out,
                                 input_mode=mode))

    preprocess_roots: dict[str, tuple[str, list[str]]] = {}
    ds = spec.dataset
    for mode in modes:
        root_params = params.PreprocessParams(images=ds.images, labels=ds.labels, num_shards=ds.shards, mode=mode,
                                              skip_bad=ds.skip_bad, limit=ds.limit, model=model.name, card=card_args,
                                              pipeline=ds.pipeline, max_pixels=ds.max_pixels, out="")
        root_key = content_key("preprocess", root_params.key_fields(), [])
        root = f"artifacts/preprocess/{root_key}"
        shard_keys = []
        for i in range(ds.shards):
            key = content_key("preprocess", {"root": root_key, "shard": i}, [])
            p = dataclasses.replace(root_params, shard=i, out=_uri(store, root))
            add(Step(key, p, f"preprocess {mode} shard {i + 1}/{ds.shards}",
                     f"{root}/{shards.shard_dir_name(i, ds.shards)}", input_mode=mode))
            shard_keys.append(key)
        preprocess_roots[mode] = (root, shard_keys)

    infers: list[Step] = []
    timing = spec.timing
    for t in spec.targets:
        data_root, shard_keys = preprocess_roots[t.input_mode]
        for bs in t.batch_sizes:
            engine: str | None = None
            deps = list(shard_keys)
            if t.backend != "null":
                export = exports[export_mode(t)]
                options = spec_mod.convert_options(t)
                # A dynamic-batch engine serves every batch size: one convert step (same key) for all.
                dynamic = options.get("dynamic_batch_sizes")
                cbs = max(dynamic) if dynamic else bs
                p = params.ConvertParams(model=_uri(store, export.out), target=t.engine, batch_size=cbs,
                                         precision=t.precision, options=options, out="")
                ckey = content_key("convert", p.key_fields(), [export.key])
                cout = f"artifacts/convert/{ckey}"
                title = f"convert {t.name} " + ("dynamic" if dynamic else f"bs{bs}")
                if t.engine == "atc":
                    title += f" (.om, {options.get('soc_version', '?')})"
                add(Step(ckey, dataclasses.replace(p, out=_uri(store, cout)), title, cout, deps=(export.key,),
                         target=t.name, input_mode=t.input_mode))
                engine = _uri(store, cout)
                deps = [ckey, *shard_keys]
            p = params.InferParams(engine=engine, data=_uri(store, data_root), backend=t.backend, device=t.device,
                                   devices=t.devices, divide_input=t.divide_input, batch_size=bs,
                                   precision=t.precision, options=dict(t.backend_options), target_name=t.name,
                                   warmup=timing.warmup, min_batches=timing.min_batches,
                                   min_seconds=timing.min_seconds, repetitions=timing.repetitions, out="")
            ikey = content_key("infer", {**p.key_fields(), "accelerator": t.accelerator}, deps)
            iout = f"artifacts/infer/{ikey}"
            infers.append(add(Step(ikey, dataclasses.replace(p, out=_uri(store, iout)), f"infer {t.name} bs{bs}",
                                   iout, deps=tuple(deps), accelerator=t.accelerator, target=t.name,
                                   input_mode=t.input_mode)))

    ref = spec.reference
    label_root, label_shards = preprocess_roots[modes[0]]
    published = models_spec.published_of(model) if model.published or model.source == "registry" else (None, None)
    top1, top5 = published
    p = params.EvalParams(
        runs=tuple(_uri(store, s.out) for s in infers), data=_uri(store, label_root), model=model.name,
        reference_top1=ref.top1 if ref.top1 is not None else top1,
        reference_top5=ref.top5 if ref.top5 is not None else top5,
        reference_kind=ref.kind, gate=ref.gate, allow_missing=spec.dataset.allow_missing,
        num_classes=card.num_classes, ratios=spec.report.ratios,
        label_offset=card.label_offset if card_args else None, model_source=models_spec.source_line(model),
        accelerators={t.name: t.accelerator for t in spec.targets if t.accelerator} or None,
        cards={t.name: t.card for t in spec.targets if t.card} or None,
        latency_limit_ms=spec.report.latency_limit_ms,
        prices={t.name: f"{t.price_per_hour!r}:{t.currency}" for t in spec.targets if t.price_per_hour is not None}
        or None, out="")
    ekey = content_key("eval", p.key_fields(), [s.key for s in infers])
    eout = f"artifacts/eval/{ekey}"
    add(Step(ekey, dataclasses.replace(p, out=_uri(store, eout)), "eval", eout,
             deps=tuple(s.key for s in infers) + tuple(label_shards)))
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

