"""Two sweeps' reports compared run by run, or a sweep with the published figures (``ghostbench compare``).

Runs are paired by model, target, batch size, precision and input mode. Each pair is judged on evidence:
B's repetitions against A's (``jobs.results.stats``: Welch's t-test on the log images/s of the repetitions,
the ratio of geometric means with its 95% confidence interval, and the smallest change the pair could
detect). What one run's repetitions cannot see, the variation between runs (the host a minute later), is
estimated across the pairs of the comparison as a random effect (``stats.between_runs``: the spread of the
pairs' log ratios around their median beyond what their repetitions explain) and added to every pair's
uncertainty; a change common to every pair (a real regression, or the host) stays in the ratios, and is judged
against ``stats.run_drift``, how far a whole run may shift between two runs (given, or as large as the spread
around it), also added to every pair's uncertainty. With threshold ``t`` (default 5%):

- ``faster`` / ``slower``: B/A beyond 1 ± t, significant (p < 0.05, the pairs of one comparison tested
  together with Holm's procedure, so that the chance of any false verdict among them stays at 5%); where a
  run is unstable (its repetitions more than ``records.UNSTABLE_SPREAD`` apart: it caught the host changing
  under it, and perf_analyzer would not report it), only when the whole 95% interval is beyond 1 ± t;
- ``inconclusive``: neither, and either a change beyond ``t`` that is not significant, or the pair could not
  have detected a change of ``t`` (its detectable change, at 80% power, is larger): too noisy, an unstable
  run (never ``same``; ``faster``/``slower`` only as above), or fewer than 3 repetitions on a side (an older
  report);
- ``same``: none of that: no change beyond ``t``, and one of ``t`` would have shown.

A pair regresses when it is ``slower``, when B's top-1 is below A's by more than B's accuracy gate
(points), or when B's logits held NaN or infinities (``Side.nonfinite``: no gate passes on them); the p99 ratio is shown but judges nothing. Inconclusive pairs never regress; they are counted and
named, and ``Comparison.exit_code`` is ``errors.EXIT_REGRESSION`` (5) on a regression, else
``errors.EXIT_INCONCLUSIVE`` (6) when ``inconclusive="fail"`` was asked for and a pair is inconclusive, else 0.
Runs with no partner are listed (``only_in_a``, ``only_in_b``); they never regress. A run that was short,
unstable or timed on a busy host is marked on its pair.

``compare_published`` takes the seed guide's figures (``jobs.results.published``, fp16, per card) as A: for
each target of B whose accelerator has published figures, B's repetitions are scaled to per card (x the
catalogue's ``chips_per_card``) and tested against the published figure of that accelerator and batch size
(a one-sample test: the published figure has no repetitions), for model ``ghostnet_1.0x``, precision fp16 and
input mode float32 (the seed's).

Pure: reports in, a typed ``Comparison`` out (``to_dict``/``from_dict``); its tables: ``compare_view``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from jobs import devices, errors
from jobs.artifacts import records
from jobs.results import published, stats, tables

PUBLISHED = "published"
"""The name that stands for the published figures in place of sweep A."""
DEFAULT_THRESHOLD = 0.05
VERDICTS = (stats.FASTER, stats.SAME, stats.SLOWER, stats.INCONCLUSIVE)
INCONCLUSIVE_POLICIES = ("pass", "fail")
PUBLISHED_MODEL = published.SEED_MODEL
PUBLISHED_PRECISION = "fp16"
"""The seed's Ascend rows: ATC's default force_fp16; the T4 rows: trtexec --fp16."""
PUBLISHED_INPUT_MODE = "float32"
"""The seed's normalized float tensors."""
PUBLISHED_LABEL = "published (seed guide, section 7.1)"
RULE = ("faster/slower: B/A beyond 1 ± {t} and significant (Welch's t-test on the repetitions' log images/s, "
        "p < 0.05 after Holm over the pairs, with the between-run variation estimated across the pairs and the "
        "shift of a whole run between runs), "
        "and, where a run is unstable, the whole 95% interval beyond 1 ± {t}; "
        "inconclusive: neither, and the pair could not detect a {t} change (80% power) or a run is unstable; "
        "else same. Regressed: slower, or top-1 down by more than the gate.")


def parse_threshold(text: str | float, option: str = "--threshold") -> float:
    """``5%`` or ``0.05`` -> 0.05; a fraction in [0, 1) (a bare number of 1 or more is refused: say ``5%``).
    ``option`` names the flag in the error (``--threshold``, ``--run-drift``)."""
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError as e:
        raise errors.BadInput(f"{option} {raw!r}: expected a percentage (5%) or a fraction (0.05)") from e
    if percent:
        value /= 100.0
    if not math.isfinite(value) or not 0.0 <= value < 1.0:
        hint = f" (did you mean {raw}%?)" if not percent and 1.0 <= value < 100.0 else ""
        raise errors.BadInput(f"{option} {raw!r}: expected a share from 0% to below 100% "
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
    """One run's figures as compared: ais_infer's images/s, the repetitions, p99 (ms), top-1 (%) and its marks."""

    throughput: float
    repetitions: tuple[float, ...] = ()
    """Each repetition's images/s (scaled like ``throughput``); empty: an older report, or a published figure."""
    low: float = 0.0
    """The run's 95% interval for an identical rerun's geometric mean of repetitions (images/s); 0: none."""
    high: float = 0.0
    compute_p99_ms: float | None = None
    """None: not known (the published figures)."""
    top1: float | None = None
    marks: tuple[str, ...] = ()
    """Why this run's figure is weaker evidence: ``short``, ``few samples``, ``unstable``, ``busy host`` ...; a
    published figure has none."""
    provider: str = ""
    nonfinite: int = 0
    """Images whose logits held NaN or an infinity (``ReportRun.nonfinite``): a B side with any regresses."""

    @property
    def geomean(self) -> float:
        """The repetitions' geometric mean (what ``low``/``high`` bound and the ratio compares); else the figure."""
        logs = [math.log(v) for v in self.repetitions if v > 0]
        return math.exp(sum(logs) / len(logs)) if logs else self.throughput

    @classmethod
    def of(cls, run: records.ReportRun, scale: float = 1.0) -> Side:
        """``scale`` multiplies the throughputs (per card = per device x chips per card)."""
        top1 = run.accuracy.get("1")
        marks = tuple(dict.fromkeys(r.split(":")[0] for r in run.validity_reasons)) if run.repetitions else ()
        if run.busy:
            marks += ("busy host",)
        if run.nonfinite:
            marks += ("non-finite logits",)
        return cls(run.throughput * scale, tuple(v * scale for v in run.repetitions), run.repetitions_low * scale,
                   run.repetitions_high * scale, run.compute_p99_ms or None,
                   None if top1 is None else float(top1), marks, run.provider, run.nonfinite)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["repetitions"], d["marks"] = list(self.repetitions), list(self.marks)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Side:
        values = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        values["repetitions"] = tuple(values.get("repetitions", ()))
        values["marks"] = tuple(values.get("marks", ()))
        return cls(**values)


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


@dataclasses.dataclass(frozen=True)
class Pair:
    """Two runs with the same key, B against A, and the evidence the verdict rests on."""

    key: Key
    a: Side
    b: Side
    evidence: stats.Evidence
    p99_ratio: float | None
    """B's compute p99 / A's (None where either is unknown); shown, judges nothing."""
    top1_delta: float | None
    """B's top-1 minus A's, in points (None where not comparable)."""
    accuracy_drop: bool
    """B's top-1 is below A's by more than the gate."""

    @property
    def verdict(self) -> str:
        return self.evidence.verdict

    @property
    def ratio(self) -> float | None:
        return self.evidence.ratio if self.evidence.ratio > 0 else None

    @property
    def regressed(self) -> bool:
        """Slower, top-1 down beyond the gate, or B's logits held NaN or infinities (its top-1 means nothing)."""
        return self.verdict == stats.SLOWER or self.accuracy_drop or self.b.nonfinite > 0

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key.to_dict(), "a": self.a.to_dict(), "b": self.b.to_dict(), "ratio": self.ratio,
                "ratio_low": self.evidence.low, "ratio_high": self.evidence.high,
                "evidence": self.evidence.to_dict(), "p99_ratio": self.p99_ratio, "top1_delta": self.top1_delta,
                "verdict": self.verdict, "accuracy_drop": self.accuracy_drop, "regressed": self.regressed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Pair:
        return cls(key=Key.from_dict(d["key"]), a=Side.from_dict(d["a"]), b=Side.from_dict(d["b"]),
                   evidence=stats.Evidence.from_dict(d["evidence"]), p99_ratio=d["p99_ratio"],
                   top1_delta=d["top1_delta"], accuracy_drop=bool(d["accuracy_drop"]))


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
    """The share a throughput must change by (and significantly) to be ``faster`` or ``slower``."""
    gate: float
    """Top-1 points B may lose against A before it regresses (B's ``reference.gate``)."""
    basis: str
    """What the throughputs measure: ``per device`` (a sweep's own figures) or ``per card`` (published)."""
    pairs: tuple[Pair, ...]
    only_in_a: tuple[Unmatched, ...] = ()
    only_in_b: tuple[Unmatched, ...] = ()
    notes: tuple[str, ...] = ()
    between_runs: float = 0.0
    """The between-run spread (log images/s) estimated across the pairs and added to each pair's uncertainty."""
    inconclusive: str = "pass"
    """What an inconclusive pair does to the exit code: ``pass`` (0, named on stderr) or ``fail`` (6)."""
    run_drift: float = 0.0
    """The shift of a whole run between runs (log images/s, ``stats.run_drift``), added to each pair's uncertainty."""

    @property
    def regressions(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.regressed)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    @property
    def undecided(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.verdict == stats.INCONCLUSIVE)

    @property
    def exit_code(self) -> int:
        if self.regressed:
            return errors.EXIT_REGRESSION
        if self.undecided and self.inconclusive == "fail":
            return errors.EXIT_INCONCLUSIVE
        return errors.EXIT_OK

    def counts(self) -> dict[str, int]:
        c = {v: sum(p.verdict == v for p in self.pairs) for v in VERDICTS}
        c.update(accuracy_drop=sum(p.accuracy_drop for p in self.pairs), only_in_a=len(self.only_in_a),
                 only_in_b=len(self.only_in_b), regressed=len(self.regressions))
        return c

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "threshold": self.threshold, "gate": self.gate, "basis": self.basis,
                "rule": RULE.format(t=f"{self.threshold:.1%}"), "between_runs": self.between_runs,
                "run_drift": self.run_drift,
                "inconclusive": self.inconclusive, "pairs": [p.to_dict() for p in self.pairs],
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
                   notes=tuple(d.get("notes") or ()), between_runs=float(d.get("between_runs", 0.0)),
                   run_drift=float(d.get("run_drift", 0.0)),
                   inconclusive=d.get("inconclusive", "pass"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Comparison:
        return cls.from_dict(json.loads(text))


_EPS = 1e-9


def _pair(key: Key, a: Side, b: Side, evidence: stats.Evidence, gate: float, accuracy: bool) -> Pair:
    delta = b.top1 - a.top1 if accuracy and a.top1 is not None and b.top1 is not None else None
    return Pair(key, a, b, evidence, _div(b.compute_p99_ms, a.compute_p99_ms), delta,
                delta is not None and delta < -gate - _EPS)


def _samples(side: Side) -> tuple[float, ...]:
    """What a side is tested with: its repetitions, or its one figure (an older report: no spread)."""
    return side.repetitions or ((side.throughput,) if side.throughput > 0 else ())


def _runs(model: str, runs: Sequence[records.ReportRun], scale: Mapping[Any, float] | None = None
          ) -> dict[Key, Side]:
    """Each run as a side; ``scale``: by (target, batch size), else by target (1 where neither is given)."""
    scale = scale or {}
    return {Key.of(model, r): Side.of(r, scale.get((r.target, r.batch_size), scale.get(r.target, 1.0))) for r in runs}


def _unless_unstable(e: stats.Evidence, a: Side, b: Side, threshold: float) -> stats.Evidence:
    """An unstable run (repetitions more than ``UNSTABLE_SPREAD`` apart: it caught the host changing under it;
    perf_analyzer does not report such a measurement) is judged only on overwhelming evidence: ``faster`` or
    ``slower`` stands when the whole confidence interval of the ratio lies beyond 1 ± threshold (the unstable
    spread is in the interval already), never ``same``; anything else is ``inconclusive``."""
    unstable = [name for name, side in (("A", a), ("B", b)) if "unstable" in side.marks]
    if e.verdict == stats.INCONCLUSIVE or not unstable:
        return e
    who = " and ".join(unstable)
    if (e.verdict == stats.SLOWER and e.high < 1 - threshold) or (e.verdict == stats.FASTER and e.low > 1 + threshold):
        return dataclasses.replace(e, why=(f"{e.why}; {who} unstable, but the whole 95% interval "
                                           f"[{e.low:.3f}, {e.high:.3f}] is beyond ±{threshold:.1%}"))
    return dataclasses.replace(e, verdict=stats.INCONCLUSIVE, why=(
        f"{who}'s repetitions differ by more than {records.UNSTABLE_SPREAD:.0%}: an unstable run is judged only "
        f"when the whole 95% interval is beyond ±{threshold:.1%} ({e.verdict} otherwise)"))


def _together(evidence: list[stats.Evidence], matched: Sequence[tuple[Side, Side]],
              threshold: float) -> list[stats.Evidence]:
    """The pairs' tests taken together (Holm's procedure over the testable ones), then unstable runs not judged."""
    tested = sum(e.p_value is not None for e in evidence)
    kept = stats.holm([e.p_value for e in evidence])
    out = []
    for e, significant, (a, b) in zip(evidence, kept, matched):
        if e.p_value is not None and tested > 1:
            verdict, why = stats.verdict_of(e.ratio, significant, e.detectable, threshold)
            e = dataclasses.replace(e, verdict=verdict, why=f"{why} (Holm over {tested} pairs)")
        out.append(_unless_unstable(e, a, b, threshold))
    return out


def judge(matched: Sequence[tuple[Side, Side]], threshold: float,
          run_drift: float | None = None) -> tuple[list[stats.Evidence], float, float]:
    """Each (A, B) pair's evidence, with the between-run spread estimated across all of them and the shift of a
    whole run (``run_drift`` given as a share, else ``stats.run_drift``'s assumption; both returned, log images/s),
    the pairs' tests taken together (Holm) and unstable runs not judged."""
    samples = [(_samples(a), _samples(b)) for a, b in matched]
    tau, k = stats.between_runs(samples), stats.testable(samples)
    drift = stats.run_drift(tau, run_drift)
    evidence = [stats.compare(a, b, threshold, tau, k, drift, drift_estimated=run_drift is None) for a, b in samples]
    return _together(evidence, matched, threshold), tau, drift


def compare(a: records.Report, b: records.Report, threshold: float = DEFAULT_THRESHOLD, a_label: str = "A",
            b_label: str = "B", inconclusive: str = "pass", run_drift: float | None = None) -> Comparison:
    """Sweep B against sweep A; pairs in B's order, A's unmatched runs in A's. A pair whose runs used different
    numbers of devices at once (``ReportRun.devices``: the figure of several is their sum) is named in a note.
    ``run_drift``: how far a whole run shifts between runs in this environment (a share, ``--run-drift``); None:
    ``stats.run_drift``'s assumption."""
    notes = []
    accuracy = a.reference.kind == b.reference.kind
    if not accuracy:
        notes.append(f"top-1 not compared: A's accuracy is {a.reference.kind}, B's {b.reference.kind}")
    if a.model != b.model:
        notes.append(f"different models (A {a.model}, B {b.model}): no run pairs")
    side_a, side_b = _runs(a.model, a.runs), _runs(b.model, b.runs)
    keys = [k for k in side_b if k in side_a]
    evidence, tau, drift = judge([(side_a[k], side_b[k]) for k in keys], threshold, run_drift)
    pairs = tuple(_pair(k, side_a[k], side_b[k], e, b.reference.gate, accuracy) for k, e in zip(keys, evidence))
    count_a, count_b = ({Key.of(x.model, r): r.devices for r in x.runs} for x in (a, b))
    differ = [f"{k.target} bs{k.batch_size} (A {count_a[k]}, B {count_b[k]})" for k in keys if count_a[k] != count_b[k]]
    if differ:
        notes.append("devices at once differ (a run on several counts their summed images/s), so these ratios "
                     f"measure the devices as much as the code: {', '.join(differ)}")
    notes += _notes(pairs, tau, drift=drift, drift_given=run_drift is not None)
    return Comparison(a_label, b_label, threshold, b.reference.gate, "per device", pairs,
                      tuple(Unmatched(k, s) for k, s in side_a.items() if k not in side_b),
                      tuple(Unmatched(k, s) for k, s in side_b.items() if k not in side_a), tuple(notes), tau,
                      inconclusive, drift)


def _notes(pairs: Sequence[Pair], tau: float, published_a: bool = False, drift: float = 0.0,
           drift_given: bool = False) -> list[str]:
    """What the reader should know about the evidence: the between-run spread and the shift of a whole run, runs
    without repetitions (B's only when A is the published figures, which never have any), short runs, busy hosts."""
    out = []
    if tau > 0:
        out.append(f"between-run variation estimated across the pairs: {math.expm1(tau):.1%} (added to each "
                   "pair's uncertainty)")
    if drift > 0 and drift_given:
        out.append(f"a shift of the whole run between runs of up to about {math.expm1(drift):.1%} (--run-drift) "
                   "is added to each pair's uncertainty")
    elif drift > 0:
        out.append(f"a shift shared by every pair may be the host changing between the two runs, not the code: it "
                   f"is assumed to be up to {math.expm1(drift):.1%} (the between-run variation) and added to each "
                   "pair's uncertainty; measure it for this environment with `python -m benchmarks aa` and give it "
                   "as --run-drift")
    if any(not p.b.repetitions or (not published_a and not p.a.repetitions) for p in pairs):
        out.append("a report without repetitions (an older ghostbench) gives no spread to test with: its pairs are "
                   "inconclusive")
    if any("short" in p.a.marks or "short" in p.b.marks for p in pairs):
        out.append(f"short runs (under {records.VALID_SECONDS:g}s of timed compute) carry more noise: "
                   "their pairs are more often inconclusive; time longer (timing.min_seconds, timing.repetitions) "
                   "for a sharper comparison")
    if any("busy host" in p.a.marks or "busy host" in p.b.marks for p in pairs):
        out.append("a run marked busy host was timed while other processes or the device's other users took "
                   "a share of it: its figure is not the hardware's")
    return out


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
            runs[key] = Side(value, top1=top1, provider=pub.label)
    return runs, chips


def compare_published(b: records.Report, threshold: float = DEFAULT_THRESHOLD, b_label: str = "B",
                      inconclusive: str = "pass") -> Comparison:
    """Sweep B against the published figures, per card (see the module's docstring)."""
    a_runs, chips = published_runs(b)
    notes = [f"published: {PUBLISHED_MODEL}, {PUBLISHED_PRECISION}, {PUBLISHED_INPUT_MODE} input, images/s per "
             "card; B's per-card figures: measured where a target ran on every chip of a card at once, else its "
             "per-device figures x the chips on one card ("
             + ", ".join(f"{a} {devices.get(a).chips_per_card}" for a in published.SEED) + ")"]
    if not chips:
        named = ", ".join(f"{t}: {a}" for t, a in b.accelerators.items()) or "none"
        notes.append(f"no target of B runs on an accelerator with published figures "
                     f"({', '.join(published.SEED)}); B's accelerators: {named}")
    if b.reference.kind != "imagenet":
        notes.append(f"top-1 not compared: B's accuracy is {b.reference.kind}, the published figure ImageNet")
    scale: dict[Any, float] = dict(chips)
    for r in b.runs:  # the per-card figure eval recorded: measured on a whole card, or extrapolated
        if r.target in chips and r.throughput > 0:
            scale[(r.target, r.batch_size)] = tables.card_figure(r, b.accelerators[r.target]).throughput / r.throughput
    extrapolated = sorted({r.target for r in b.runs if r.target in chips
                           and not tables.card_figure(r, b.accelerators[r.target]).measured})
    if extrapolated:
        notes.append(f"extrapolated from fewer chips than a card has, not measured on a whole card: "
                     f"{', '.join(extrapolated)}")
    b_runs = _runs(PUBLISHED_MODEL if b.model == PUBLISHED_MODEL else b.model, b.runs, scale)
    keys = [k for k in b_runs if k in a_runs]
    matched = [(a_runs[k], b_runs[k]) for k in keys]
    evidence = _together([stats.compare_to_value(a.throughput, _samples(b_), threshold) for a, b_ in matched],
                         matched, threshold)
    pairs = tuple(_pair(k, a, b_, e, b.reference.gate, True) for k, (a, b_), e in zip(keys, matched, evidence))
    notes += _notes(pairs, 0.0, published_a=True)
    return Comparison(PUBLISHED_LABEL, b_label, threshold, b.reference.gate, "per card", pairs,
                      tuple(Unmatched(k, s) for k, s in a_runs.items() if k not in b_runs),
                      tuple(Unmatched(k, s) for k, s in b_runs.items() if k not in a_runs), tuple(notes), 0.0,
                      inconclusive)


def ratio_bars(c: Comparison) -> list[dict[str, Any]]:
    """One row per pair for a plot of ratio bars with their confidence interval: target, batch_size, ratio,
    ratio_low, ratio_high, verdict, plus precision, input_mode, regressed and the threshold (draw 1 ± threshold
    as the band of ``same``). Ratios may be None (A's throughput 0)."""
    return [{"target": p.key.target, "batch_size": p.key.batch_size, "ratio": p.ratio,
             "ratio_low": p.evidence.low or None, "ratio_high": p.evidence.high or None, "verdict": p.verdict,
             "precision": p.key.precision, "input_mode": p.key.input_mode, "regressed": p.regressed,
             "threshold": c.threshold} for p in c.pairs]
