"""How sure a figure is: a run's repetitions summarized, two runs compared, percentiles with enough samples.

A run's throughput comes from ``n`` repetitions, each timed on a fresh backend session (``jobs.harness.passes``),
so that what changes between runs (thread placement, memory layout, what else the host does) changes between
repetitions too. The statistics are taken on the logarithm of the repetitions' images/s: a slowdown multiplies
throughput, and the log makes a 20% loss and a 25% gain the same size.

- ``jobs.artifacts.records.Repetitions`` (the record in ``summary.json``): median, geometric mean, the log
  standard deviation and a 95% prediction interval for an identical rerun.
- ``compare``: Welch's t-test on the two runs' log repetitions (Google Benchmark's ``compare.py`` tests
  repetitions with a U test; with 5 repetitions a side a U test cannot reach the significance a sweep of many
  rows needs, the t-test on logs can): the ratio of geometric means with its 95% confidence interval, the
  p-value, and the **minimum detectable effect** at 80% power, ``(t(1-α/2, df) + t(0.8, df)) · SE``. What
  one run's repetitions cannot see (the host a minute later) is ``between_runs``, estimated robustly across
  the pairs of a comparison and added to each pair's ``SE``, with ``run_drift``: the shift of a whole run,
  which one comparison cannot tell from a change of code. The verdict:
  ``faster``/``slower`` when the ratio is beyond the threshold and significant; otherwise ``inconclusive`` when
  the runs are too noisy to detect a change of the threshold's size (MDE > threshold), else ``same``.
- Percentiles: ``records.P99_SAMPLES``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jobs.artifacts import records

CONFIDENCE = records.CONFIDENCE
"""Of the intervals and of the tests (two-sided α = 0.05)."""
POWER = 0.80
"""With which the minimum detectable effect would be detected."""
MIN_REPETITIONS = records.MIN_REPETITIONS
"""Fewer repetitions than this give no test (a run of 1 or 2 cannot estimate its spread)."""

FASTER, SLOWER, SAME, INCONCLUSIVE = "faster", "slower", "same", "inconclusive"


def _logs(values: Sequence[float]) -> np.ndarray:
    a = np.asarray([v for v in values if v > 0], dtype=np.float64)
    return np.log(a)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """Why a pair of runs got its verdict: B over A, with the test's numbers."""

    ratio: float
    """B's geometric mean over A's (images/s; above 1: B is faster)."""
    low: float
    """95% confidence interval of the ratio."""
    high: float
    p_value: float | None
    """Welch's t-test, two-sided; None when a side has fewer than ``MIN_REPETITIONS`` repetitions."""
    detectable: float | None
    """The smallest change (a share, 0.05 = 5%) these repetitions would detect at 80% power; None: untestable."""
    n_a: int
    n_b: int
    verdict: str
    """``faster``, ``slower``, ``same`` or ``inconclusive``."""
    why: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evidence:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


def _t_quantile(p: float, df: float) -> float:
    from scipy import special  # here, not at import: scipy costs every process that imports this room 0.1 s

    return float(special.stdtrit(df, p))


def _two_sided_p(t: float, df: float) -> float:
    from scipy import special

    return float(2.0 * special.stdtr(df, -abs(t)))


def verdict_of(ratio: float, significant: bool, detectable: float | None, threshold: float) -> tuple[str, str]:
    """(verdict, why) of a ratio given whether it is significant and the change the pair could detect."""
    if significant and ratio > 1 + threshold:
        return FASTER, f"beyond +{threshold:.1%} and significant"
    if significant and ratio < 1 - threshold:
        return SLOWER, f"beyond -{threshold:.1%} and significant"
    if detectable is None:
        return INCONCLUSIVE, f"fewer than {MIN_REPETITIONS} repetitions on a side: no spread to test with"
    if detectable > threshold:
        return INCONCLUSIVE, (f"too noisy to detect a {threshold:.1%} change: the smallest detectable is "
                              f"{detectable:.1%}")
    if abs(ratio - 1) > threshold:
        return INCONCLUSIVE, (f"a {ratio - 1:+.1%} change, beyond ±{threshold:.1%} but not significant (the "
                              f"smallest detectable is {detectable:.1%}): more or longer repetitions would tell")
    if significant:
        return SAME, f"a significant change within ±{threshold:.1%}"
    return SAME, f"no significant change; a {detectable:.1%} change would have shown"


def compare(a: Sequence[float], b: Sequence[float], threshold: float, between: float = 0.0,
            between_pairs: int = 0, drift: float = 0.0, drift_estimated: bool = False) -> Evidence:
    """B's repetitions against A's (images/s each): the ratio of geometric means, its confidence interval, Welch's
    test and the verdict (see the module's docstring). ``threshold``: a share (0.05 = 5%); ``between``: the
    between-run spread (log images/s, ``between_runs``) added to the difference's uncertainty, estimated from
    ``between_pairs`` pairs (its degrees of freedom enter the test's); ``drift``: the shift of a whole run between
    two runs (log images/s, ``run_drift``), added too; ``drift_estimated``: it is ``between`` itself, from the same
    pairs (else it was given: it adds no uncertainty of its own to the degrees of freedom)."""
    la, lb = _logs(a), _logs(b)
    if len(la) == 0 or len(lb) == 0:
        return Evidence(0.0, 0.0, 0.0, None, None, len(la), len(lb), INCONCLUSIVE, "no throughput on a side")
    d = float(lb.mean() - la.mean())
    if len(la) < MIN_REPETITIONS or len(lb) < MIN_REPETITIONS:
        verdict, why = verdict_of(math.exp(d), False, None, threshold)
        return Evidence(math.exp(d), math.exp(d), math.exp(d), None, None, len(la), len(lb), verdict, why)
    va, vb = float(la.var(ddof=1)) / len(la), float(lb.var(ddof=1)) / len(lb)
    se = math.sqrt(va + vb + between ** 2 + drift ** 2)
    if se == 0.0:  # identical repetitions on both sides (a stand-in device): any difference is exact
        significant, df, p = d != 0.0, float(len(la) + len(lb) - 2), (0.0 if d != 0.0 else 1.0)
    else:  # Welch-Satterthwaite: each variance term with its own degrees of freedom (the between-run one: pairs - 1;
        # a drift estimated from the same pairs is one term with it, not a second independent one; a drift that was
        # given, not estimated, has no sampling error: it adds nothing to the sum, and alone leaves df infinite)
        estimated = between ** 2 + (drift ** 2 if drift_estimated else 0.0)
        terms = [(va, len(la) - 1), (vb, len(lb) - 1), (estimated, between_pairs - 1)]
        spread = sum(v ** 2 / max(n, 1) for v, n in terms if v > 0)
        df = se ** 4 / spread if spread > 0 else math.inf
        p = _two_sided_p(d / se, df)
        significant = p < 1 - CONFIDENCE
    t_ci = _t_quantile(0.5 + CONFIDENCE / 2, df)
    detectable = math.expm1((t_ci + _t_quantile(POWER, df)) * se)
    verdict, why = verdict_of(math.exp(d), significant, detectable, threshold)
    return Evidence(math.exp(d), math.exp(d - t_ci * se), math.exp(d + t_ci * se), p, detectable, len(la), len(lb),
                    verdict, why)


MIN_PAIRS_FOR_BETWEEN = 4
"""Fewer testable pairs than this give no between-run estimate (0): a median needs a few values to be robust."""


def holm(p_values: Sequence[float | None], alpha: float = 1 - CONFIDENCE) -> list[bool]:
    """Which of several tests made together stay significant under Holm's step-down procedure (Scandinavian
    Journal of Statistics 6, 1979): sorted by p, the i-th smallest must be below alpha / (m - i); the first that
    is not stops the rest. The chance of any false positive among them stays at ``alpha``. None: untested."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    keep = [False] * len(p_values)
    for rank, (p, i) in enumerate(order):
        if p >= alpha / (len(order) - rank):
            break
        keep[i] = True
    return keep


def testable(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> int:
    """How many of the pairs have enough repetitions on both sides to be tested."""
    return sum(len(_logs(a)) >= MIN_REPETITIONS and len(_logs(b)) >= MIN_REPETITIONS for a, b in pairs)


def between_runs(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> float:
    """The spread between runs that the runs' own repetitions do not explain, estimated across the pairs of one
    comparison (log images/s; 0 when they explain it all, or with fewer than ``MIN_PAIRS_FOR_BETWEEN`` testable
    pairs).

    A random-effects variance (as in DerSimonian & Laird, Controlled Clinical Trials 7, 1986), estimated robustly:
    the spread of the pairs' log ratios ``d_i`` around their median (the median absolute deviation x 1.4826, a
    normal standard deviation's estimate) minus what the repetitions explain (the median of the pairs' sampling
    variances). Taken around the median, a change every pair shares (a regression) is not counted as noise, and
    a real change in a few pairs does not inflate it for the others."""
    d, v = [], []
    for a, b in pairs:
        la, lb = _logs(a), _logs(b)
        if len(la) < MIN_REPETITIONS or len(lb) < MIN_REPETITIONS:
            continue
        d.append(float(lb.mean() - la.mean()))
        v.append(float(la.var(ddof=1)) / len(la) + float(lb.var(ddof=1)) / len(lb))
    if len(d) < MIN_PAIRS_FOR_BETWEEN:
        return 0.0
    dd = np.asarray(d)
    spread = 1.4826 * float(np.median(np.abs(dd - np.median(dd))))
    return math.sqrt(max(0.0, spread ** 2 - float(np.median(v))))


def run_drift(between: float, given: float | None = None) -> float:
    """How far a whole run may shift between two runs on the same host (log images/s): ``given`` (from repeated
    runs of that environment, e.g. ``python -m benchmarks aa``) when there is one, else as much as the pairs'
    own between-run spread (``between_runs``).

    With fewer than ``MIN_PAIRS_FOR_BETWEEN`` testable pairs there is no spread to take it from, and it is 0 (a
    shared shift is then the code's, as before); give it for comparisons of a few rows.

    A host that changes between two runs (other tenants on the memory bus, a clock, a vCPU taken away) moves
    every row of the later run, not one: on a 2-vCPU VM three demos of unchanged code differed by a shift every
    row shared of -7%, -4% and +2%, with 2-3% of spread around it (docs/performance.md). One comparison cannot
    tell such a shift from a change of code: its rows only show the spread around it. Counting the shift as
    nothing (as ``between_runs`` alone does) called unchanged code ``slower``; assuming it is as large as the
    spread the rows show is the smallest assumption that does not. A regression far beyond that (a stand-in
    device at 16,000 against 20,000 images/s: exact repetitions, no spread) is still told."""
    return math.log1p(given) if given is not None else between


def compare_to_value(value: float, b: Sequence[float], threshold: float) -> Evidence:
    """B's repetitions against a fixed figure (a published one, which has no repetitions): a one-sample t-test on
    the logs, otherwise as ``compare``."""
    lb = _logs(b)
    if value <= 0 or len(lb) == 0:
        return Evidence(0.0, 0.0, 0.0, None, None, 1, len(lb), INCONCLUSIVE, "no throughput on a side")
    d = float(lb.mean()) - math.log(value)
    if len(lb) < MIN_REPETITIONS:
        verdict, why = verdict_of(math.exp(d), False, None, threshold)
        return Evidence(math.exp(d), math.exp(d), math.exp(d), None, None, 1, len(lb), verdict, why)
    se = float(lb.std(ddof=1)) / math.sqrt(len(lb))
    df = float(len(lb) - 1)
    if se == 0.0:
        significant, p = d != 0.0, (0.0 if d != 0.0 else 1.0)
    else:
        p = _two_sided_p(d / se, df)
        significant = p < 1 - CONFIDENCE
    t_ci = _t_quantile(0.5 + CONFIDENCE / 2, df)
    detectable = math.expm1((t_ci + _t_quantile(POWER, df)) * se)
    verdict, why = verdict_of(math.exp(d), significant, detectable, threshold)
    return Evidence(math.exp(d), math.exp(d - t_ci * se), math.exp(d + t_ci * se), p, detectable, 1, len(lb),
                    verdict, why)
