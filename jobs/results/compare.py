"""Two sweeps' reports compared run by run, or a sweep with the published figures (``ghostbench compare``).

Runs are paired by model, target, batch size, precision and input mode. For each pair: B's throughput over
A's (``ratio``) with the range the runs' timing windows allow (``ratio_low`` = B's slowest window over A's
fastest, ``ratio_high`` = B's fastest over A's slowest), the compute p99 ratio, the top-1 delta (points),
and a verdict. With threshold ``t`` (default 5%):

- ``faster``: ``ratio > 1 + t`` and ``ratio_low > 1 + t`` (even B's slowest window beats A's fastest by
  more than the threshold);
- ``slower``: ``ratio < 1 - t`` and ``ratio_high < 1 - t`` (even B's fastest window is behind A's slowest
  by more than the threshold);
- ``same`` otherwise: within the threshold or within the measured spread.

A run without windows (an older report) counts as its throughput alone. A pair regresses when it is
``slower`` or when B's top-1 is below A's by more than B's accuracy gate (points); the p99 ratio is
shown but judges nothing. Runs of one side with no partner are listed (``only_in_a``, ``only_in_b``);
they never regress. ``Comparison.exit_code`` is ``errors.EXIT_REGRESSION`` (5) when a pair regressed.

``compare_published`` takes the seed guide's figures (``jobs.results.published``, fp16, per card) as A: for
each target of B whose accelerator (``Report.accelerators``) has published figures, B's figures are
scaled to per card (x the catalogue's ``chips_per_card``) as ``jobs.results.tables.published_comparison``
does, and paired with the published figure of that accelerator and batch size for model
``ghostnet_1.0x``, precision fp16 and input mode float32 (the seed's).

Pure: reports in, a typed ``Comparison`` out (``to_dict``/``from_dict``), with its terminal table,
Markdown and the rows a plot of ratio bars needs (``ratio_bars``). Reading sweeps is the CLI's.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from jobs import devices, errors
from jobs.artifacts import records
from jobs.results import published

PUBLISHED = "published"
"""The name that stands for the published figures in place of sweep A."""
DEFAULT_THRESHOLD = 0.05
VERDICTS = ("faster", "same", "slower")
PUBLISHED_MODEL = "ghostnet_1.0x"
PUBLISHED_PRECISION = "fp16"
"""The seed's Ascend rows: ATC's default force_fp16; the T4 rows: trtexec --fp16."""
PUBLISHED_INPUT_MODE = "float32"
"""The seed's normalized float tensors."""
PUBLISHED_LABEL = "published (seed guide, section 7.1)"


def parse_threshold(text: str | float) -> float:
    """``5%`` or ``0.05`` -> 0.05; a fraction in [0, 1) (a bare number of 1 or more is refused: say ``5%``)."""
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError as e:
        raise errors.BadInput(f"--threshold {raw!r}: expected a percentage (5%) or a fraction (0.05)") from e
    if percent:
        value /= 100.0
    if not math.isfinite(value) or not 0.0 <= value < 1.0:
        hint = f" (did you mean {raw}%?)" if not percent and 1.0 <= value < 100.0 else ""
        raise errors.BadInput(f"--threshold {raw!r}: expected a share from 0% to below 100% "
                              f"(5% or 0.05){hint}")
    return value


@dataclasses.dataclass(frozen=True)
class Key:
    """What pairs two runs: the sweep's model, and the run's target, batch size, precision and input mode."""

    model: str
    target: str
    batch_size: int
    precision: str
    input_mode: str | None

    @classmethod
    def of(cls, model: str, run: records.ReportRun) -> Key:
        return cls(model, run.target, run.batch_size, run.precision, run.input_mode)

    def label(self) -> str:
        return f"{self.target} bs{self.batch_size} {self.precision} {self.input_mode or '-'}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Key:
        return cls(d["model"], d["target"], int(d["batch_size"]), d["precision"], d.get("input_mode"))


@dataclasses.dataclass(frozen=True)
class Side:
    """One run's figures as compared: images/s with its windows' range, p99 (ms) and top-1 (%)."""

    throughput: float
    throughput_min: float
    throughput_max: float
    compute_p99_ms: float | None
    """None: not known (the published figures)."""
    top1: float | None
    stable: bool = True
    provider: str = ""

    @classmethod
    def of(cls, run: records.ReportRun, scale: float = 1.0) -> Side:
        """``scale`` multiplies the throughputs (per card = per device x chips per card)."""
        top1 = run.accuracy.get("1")
        return cls(run.throughput * scale, run.throughput_min * scale, run.throughput_max * scale,
                   run.compute_p99_ms or None, None if top1 is None else float(top1), run.stable, run.provider)

    @property
    def low(self) -> float:
        """The slowest window's images/s; the throughput itself when the run has no windows."""
        return self.throughput_min if self.throughput_max > 0 else self.throughput

    @property
    def high(self) -> float:
        return self.throughput_max if self.throughput_max > 0 else self.throughput

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Side:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


@dataclasses.dataclass(frozen=True)
class Pair:
    """Two runs with the same key, B against A."""

    key: Key
    a: Side
    b: Side
    ratio: float | None
    """B's throughput / A's (None when A's is 0)."""
    ratio_low: float | None
    """B's slowest window / A's fastest."""
    ratio_high: float | None
    """B's fastest window / A's slowest."""
    p99_ratio: float | None
    """B's compute p99 / A's (None where either is unknown); shown, judges nothing."""
    top1_delta: float | None
    """B's top-1 minus A's, in points (None where not comparable)."""
    verdict: str
    """``faster``, ``slower`` or ``same`` (throughput; ``VERDICTS``)."""
    accuracy_drop: bool
    """B's top-1 is below A's by more than the gate."""

    @property
    def regressed(self) -> bool:
        return self.verdict == "slower" or self.accuracy_drop

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key.to_dict(), "a": self.a.to_dict(), "b": self.b.to_dict(), "ratio": self.ratio,
                "ratio_low": self.ratio_low, "ratio_high": self.ratio_high, "p99_ratio": self.p99_ratio,
                "top1_delta": self.top1_delta, "verdict": self.verdict, "accuracy_drop": self.accuracy_drop,
                "regressed": self.regressed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Pair:
        return cls(key=Key.from_dict(d["key"]), a=Side.from_dict(d["a"]), b=Side.from_dict(d["b"]),
                   ratio=d["ratio"], ratio_low=d["ratio_low"], ratio_high=d["ratio_high"], p99_ratio=d["p99_ratio"],
                   top1_delta=d["top1_delta"], verdict=d["verdict"], accuracy_drop=bool(d["accuracy_drop"]))


@dataclasses.dataclass(frozen=True)
class Unmatched:
    """A run of one side that the other side has no run for."""

    key: Key
    run: Side

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key.to_dict(), "run": self.run.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Unmatched:
        return cls(Key.from_dict(d["key"]), Side.from_dict(d["run"]))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Sweep B against A (or against the published figures): the pairs and what has no partner."""

    a: str
    """Where A came from (its report's URI, or ``PUBLISHED_LABEL``)."""
    b: str
    threshold: float
    """The share a throughput must change by (and its spread clear) to be ``faster`` or ``slower``."""
    gate: float
    """Top-1 points B may lose against A before it regresses (B's ``reference.gate``)."""
    basis: str
    """What the throughputs measure: ``per device`` (a sweep's own figures) or ``per card`` (published)."""
    pairs: tuple[Pair, ...]
    only_in_a: tuple[Unmatched, ...] = ()
    only_in_b: tuple[Unmatched, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def regressions(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.regressed)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    @property
    def exit_code(self) -> int:
        return errors.EXIT_REGRESSION if self.regressed else errors.EXIT_OK

    def counts(self) -> dict[str, int]:
        c = {v: sum(p.verdict == v for p in self.pairs) for v in VERDICTS}
        c.update(accuracy_drop=sum(p.accuracy_drop for p in self.pairs), only_in_a=len(self.only_in_a),
                 only_in_b=len(self.only_in_b), regressed=len(self.regressions))
        return c

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "threshold": self.threshold, "gate": self.gate, "basis": self.basis,
                "rule": RULE.format(t=f"{self.threshold:.1%}"), "pairs": [p.to_dict() for p in self.pairs],
                "only_in_a": [u.to_dict() for u in self.only_in_a],
                "only_in_b": [u.to_dict() for u in self.only_in_b],
                "notes": list(self.notes), "counts": self.counts(), "regressed": self.regressed,
                "exit_code": self.exit_code}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Comparison:
        return cls(a=d["a"], b=d["b"], threshold=float(d["threshold"]), gate=float(d["gate"]), basis=d["basis"],
                   pairs=tuple(Pair.from_dict(p) for p in d["pairs"]),
                   only_in_a=tuple(Unmatched.from_dict(u) for u in d.get("only_in_a") or ()),
                   only_in_b=tuple(Unmatched.from_dict(u) for u in d.get("only_in_b") or ()),
                   notes=tuple(d.get("notes") or ()))

    @classmethod
    def from_json(cls, text: str | bytes) -> Comparison:
        return cls.from_dict(json.loads(text))


RULE = ("faster/slower: B/A beyond 1 ± {t} and B's whole window range beyond A's by {t} "
        "(ratio_low > 1 + t, or ratio_high < 1 - t); else same. "
        "Regressed: slower, or top-1 down by more than the gate.")


def judge(a: Side, b: Side, threshold: float) -> tuple[float | None, float | None, float | None, str]:
    """(ratio, ratio_low, ratio_high, verdict) of B against A under the rule of this module."""
    ratio = _div(b.throughput, a.throughput)
    low, high = _div(b.low, a.high), _div(b.high, a.low)
    verdict = "same"
    if ratio is not None:
        if ratio > 1 + threshold and low is not None and low > 1 + threshold:
            verdict = "faster"
        elif ratio < 1 - threshold and high is not None and high < 1 - threshold:
            verdict = "slower"
    return ratio, low, high, verdict


_EPS = 1e-9


def pair(key: Key, a: Side, b: Side, threshold: float, gate: float, accuracy: bool = True) -> Pair:
    """B against A; ``accuracy=False``: top-1 not comparable (different references)."""
    ratio, low, high, verdict = judge(a, b, threshold)
    delta = b.top1 - a.top1 if accuracy and a.top1 is not None and b.top1 is not None else None
    return Pair(key, a, b, ratio, low, high, _div(b.compute_p99_ms, a.compute_p99_ms), delta, verdict,
                delta is not None and delta < -gate - _EPS)


def _runs(model: str, runs: Sequence[records.ReportRun], scale: Mapping[str, float] | None = None
          ) -> dict[Key, Side]:
    return {Key.of(model, r): Side.of(r, (scale or {}).get(r.target, 1.0)) for r in runs}


def _match(a: dict[Key, Side], b: dict[Key, Side], threshold: float, gate: float, accuracy: bool = True
           ) -> tuple[tuple[Pair, ...], tuple[Unmatched, ...], tuple[Unmatched, ...]]:
    pairs = tuple(pair(k, a[k], s, threshold, gate, accuracy) for k, s in b.items() if k in a)
    return (pairs, tuple(Unmatched(k, s) for k, s in a.items() if k not in b),
            tuple(Unmatched(k, s) for k, s in b.items() if k not in a))


def compare(a: records.Report, b: records.Report, threshold: float = DEFAULT_THRESHOLD, a_label: str = "A",
            b_label: str = "B") -> Comparison:
    """Sweep B against sweep A; pairs in B's order, A's unmatched runs in A's."""
    notes = []
    accuracy = a.reference.kind == b.reference.kind
    if not accuracy:
        notes.append(f"top-1 not compared: A's accuracy is {a.reference.kind}, B's {b.reference.kind}")
    if a.model != b.model:
        notes.append(f"different models (A {a.model}, B {b.model}): no run pairs")
    pairs, only_a, only_b = _match(_runs(a.model, a.runs), _runs(b.model, b.runs), threshold, b.reference.gate,
                                   accuracy)
    return Comparison(a_label, b_label, threshold, b.reference.gate, "per device", pairs, only_a, only_b,
                      tuple(notes))


def published_runs(b: records.Report) -> tuple[dict[Key, Side], dict[str, float]]:
    """The published figures as A's runs, one per target of B with a published accelerator and per published
    batch size (per card, no spread, top-1 the published ImageNet figure when B's reference is ImageNet);
    and each such target's chips per card (B's scale to per card)."""
    top1 = b.reference.top1 if b.reference.kind == "imagenet" else None
    runs: dict[Key, Side] = {}
    chips: dict[str, float] = {}
    for target in dict.fromkeys(r.target for r in b.runs):
        accelerator = b.accelerators.get(target)
        pub = published.SEED.get(accelerator) if accelerator else None
        if pub is None:
            continue
        chips[target] = float(devices.get(pub.accelerator).chips_per_card)
        for bs, value in sorted(pub.throughput.items()):
            key = Key(PUBLISHED_MODEL, target, bs, PUBLISHED_PRECISION, PUBLISHED_INPUT_MODE)
            runs[key] = Side(value, value, value, None, top1, True, pub.label)
    return runs, chips


def compare_published(b: records.Report, threshold: float = DEFAULT_THRESHOLD, b_label: str = "B") -> Comparison:
    """Sweep B against the published figures, per card (see the module's docstring)."""
    a_runs, chips = published_runs(b)
    notes = [f"published: {PUBLISHED_MODEL}, {PUBLISHED_PRECISION}, {PUBLISHED_INPUT_MODE} input, images/s per "
             "card; B's per-device figures x the chips on one card ("
             + ", ".join(f"{a} {devices.get(a).chips_per_card}" for a in published.SEED) + ")"]
    if not chips:
        named = ", ".join(f"{t}: {a}" for t, a in b.accelerators.items()) or "none"
        notes.append(f"no target of B runs on an accelerator with published figures "
                     f"({', '.join(published.SEED)}); B's accelerators: {named}")
    if b.reference.kind != "imagenet":
        notes.append(f"top-1 not compared: B's accuracy is {b.reference.kind}, the published figure ImageNet")
    b_runs = _runs(b.model, [r for r in b.runs], chips)
    pairs, only_a, only_b = _match(a_runs, b_runs, threshold, b.reference.gate)
    return Comparison(PUBLISHED_LABEL, b_label, threshold, b.reference.gate, "per card", pairs, only_a, only_b,
                      tuple(notes))


def ratio_bars(c: Comparison) -> list[dict[str, Any]]:
    """One row per pair for a plot of ratio bars with the spread drawn: target, batch_size, ratio, ratio_low,
    ratio_high, verdict (``faster``/``same``/``slower``), plus precision, input_mode, regressed and the
    threshold (draw 1 ± threshold as the band of ``same``). Ratios may be None (A's throughput 0)."""
    return [{"target": p.key.target, "batch_size": p.key.batch_size, "ratio": p.ratio, "ratio_low": p.ratio_low,
             "ratio_high": p.ratio_high, "verdict": p.verdict, "precision": p.key.precision,
             "input_mode": p.key.input_mode, "regressed": p.regressed, "threshold": c.threshold} for p in c.pairs]


# --- tables ------------------------------------------------------------------------------------------------


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _range(side: Side) -> str:
    spread = f" [{_num(side.low)}–{_num(side.high)}]" if side.high != side.low else ""
    return f"{_num(side.throughput)}{spread}{'' if side.stable else ' unstable'}"


def _ratio(p: Pair) -> str:
    if p.ratio is None:
        return "-"
    spread = f" [{_num(p.ratio_low, 3)}–{_num(p.ratio_high, 3)}]" if p.ratio_low != p.ratio_high else ""
    return f"{p.ratio:.3f}{spread}"


def _verdict(p: Pair, gate: float) -> str:
    text = "SLOWER" if p.verdict == "slower" else p.verdict
    return text + (f"; TOP-1 DROP > {gate:g}" if p.accuracy_drop else "")


def table(c: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["Target", "Batch", "Precision", "Input", f"A images/s {c.basis} [windows]",
              f"B images/s {c.basis} [windows]", "B/A [low–high]", "p99 B/A", "Δ top-1", "Verdict"]
    rows = [[p.key.target, str(p.key.batch_size), p.key.precision, p.key.input_mode or "-", _range(p.a), _range(p.b),
             _ratio(p), _num(p.p99_ratio, 3), "-" if p.top1_delta is None else f"{p.top1_delta:+.2f}",
             _verdict(p, c.gate)] for p in c.pairs]
    return header, rows


def _unmatched_lines(c: Comparison) -> list[tuple[str, list[str]]]:
    return [(f"Only in A ({c.a})", [f"{u.key.label()}: {_num(u.run.throughput)} images/s" for u in c.only_in_a]),
            (f"Only in B ({c.b})", [f"{u.key.label()}: {_num(u.run.throughput)} images/s" for u in c.only_in_b])]


def summary_line(c: Comparison) -> str:
    n = c.counts()
    head = (f"{len(c.pairs)} pair(s): {n['faster']} faster, {n['same']} same, {n['slower']} slower, "
            f"{n['accuracy_drop']} top-1 drop(s); {n['only_in_a']} only in A, {n['only_in_b']} only in B")
    return head + (f". REGRESSED: {n['regressed']} (exit {errors.EXIT_REGRESSION})" if c.regressed
                   else ". No regression.")


def to_text(c: Comparison) -> str:
    """The terminal table: aligned columns, then the unmatched runs and a summary line."""
    header, rows = table(c)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
    out = [f"A: {c.a}", f"B: {c.b}", f"threshold {c.threshold:.1%}, top-1 gate {c.gate:g} point(s)", ""]
    out += [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    for title, lines in _unmatched_lines(c):
        if lines:
            out += ["", f"{title}:"] + [f"  {x}" for x in lines]
    out += [""] + [f"note: {n}" for n in c.notes] + [summary_line(c)]
    return "\n".join(out) + "\n"


def to_markdown(c: Comparison) -> str:
    header, rows = table(c)
    out = ["# ghostbench compare", "", f"- A: `{c.a}`", f"- B: `{c.b}`",
           f"- Threshold {c.threshold:.1%}; top-1 gate {c.gate:g} point(s); throughput {c.basis}.",
           f"- Rule: {RULE.format(t=f'{c.threshold:.1%}')}"] + [f"- Note: {n}" for n in c.notes] + [""]
    out += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    for title, lines in _unmatched_lines(c):
        if lines:
            out += ["", f"## {title}", ""] + [f"- {x}" for x in lines]
    out += ["", summary_line(c)]
    return "\n".join(out) + "\n"


FORMATS = {"table": to_text, "md": to_markdown, "json": Comparison.to_json}
