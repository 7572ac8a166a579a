"""A comparison as people read it: an aligned terminal table, Markdown, or the typed JSON (``FORMATS``).

Each pair shows both runs' images/s (the geometric mean of their repetitions; ais_infer's throughput where a
run has none) with the interval an identical rerun's would fall in, B/A with its 95% confidence interval, the
pair's own p-value (before Holm's procedure over the pairs), the p99 ratio, the top-1 delta, the verdict (for
an inconclusive pair, the smallest change it could detect) and the marks of weaker evidence (short, unstable,
busy host). The rule: ``jobs.results.compare``.
"""

from __future__ import annotations

from jobs import errors
from jobs.results import compare as compare_mod
from jobs.results import stats


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _side(side: compare_mod.Side) -> str:
    n = len(side.repetitions)
    interval = f" [{_num(side.low)}–{_num(side.high)}]" if n >= stats.MIN_REPETITIONS and side.high > side.low else ""
    reps = f" ({n} reps)" if n else ""
    marks = f" {', '.join(side.marks)}" if side.marks else ""
    return f"{_num(side.geomean)}{interval}{reps}{marks}"


def _ratio(p: compare_mod.Pair) -> str:
    if p.ratio is None:
        return "-"
    e = p.evidence
    spread = f" [{_num(e.low, 3)}–{_num(e.high, 3)}]" if e.low != e.high else ""
    return f"{p.ratio:.3f}{spread}"


def _verdict(p: compare_mod.Pair, gate: float) -> str:
    text = {stats.SLOWER: "SLOWER", stats.INCONCLUSIVE: "inconclusive"}.get(p.verdict, p.verdict)
    if p.verdict == stats.INCONCLUSIVE and p.evidence.detectable is not None:
        text += f" (could detect ≥{p.evidence.detectable:.1%})"
    return text + (f"; TOP-1 DROP > {gate:g}" if p.accuracy_drop else "")


def table(c: compare_mod.Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["Target", "Batch", "Precision", "Input", f"A images/s {c.basis} [rerun interval]",
              f"B images/s {c.basis} [rerun interval]", "B/A [95% CI]", "p (alone)", "p99 B/A", "Δ top-1", "Verdict"]
    rows = [[p.key.target, str(p.key.batch_size), p.key.precision, p.key.input_mode or "-", _side(p.a), _side(p.b),
             _ratio(p), "-" if p.evidence.p_value is None else f"{p.evidence.p_value:.2g}",
             _num(p.p99_ratio, 3), "-" if p.top1_delta is None else f"{p.top1_delta:+.2f}", _verdict(p, c.gate)]
            for p in c.pairs]
    return header, rows


def _unmatched_lines(c: compare_mod.Comparison) -> list[tuple[str, list[str]]]:
    return [(f"Only in A ({c.a})", [f"{u.key.label()}: {_num(u.run.throughput)} images/s" for u in c.only_in_a]),
            (f"Only in B ({c.b})", [f"{u.key.label()}: {_num(u.run.throughput)} images/s" for u in c.only_in_b])]


def summary_line(c: compare_mod.Comparison) -> str:
    n = c.counts()
    head = (f"{len(c.pairs)} pair(s): {n['faster']} faster, {n['same']} same, {n['slower']} slower, "
            f"{n['inconclusive']} inconclusive, {n['accuracy_drop']} top-1 drop(s); {n['only_in_a']} only in A, "
            f"{n['only_in_b']} only in B")
    if c.regressed:
        return head + f". REGRESSED: {n['regressed']} (exit {errors.EXIT_REGRESSION})"
    if c.undecided:
        what = (f"exit {errors.EXIT_INCONCLUSIVE}, --inconclusive fail" if c.inconclusive == "fail"
                else "exit 0; --inconclusive fail makes it exit " + str(errors.EXIT_INCONCLUSIVE))
        return head + f". No regression shown, but {n['inconclusive']} pair(s) could not be judged ({what})."
    return head + ". No regression."


def to_text(c: compare_mod.Comparison) -> str:
    """The terminal table: aligned columns, then the unmatched runs, the notes and a summary line."""
    header, rows = table(c)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [f"A: {c.a}", f"B: {c.b}", f"threshold {c.threshold:.1%}, top-1 gate {c.gate:g} point(s)", ""]
    out += [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    for title, lines in _unmatched_lines(c):
        if lines:
            out += ["", f"{title}:"] + [f"  {x}" for x in lines]
    out += [""] + [f"note: {n}" for n in c.notes] + [summary_line(c)]
    return "\n".join(out) + "\n"


def to_markdown(c: compare_mod.Comparison) -> str:
    header, rows = table(c)
    out = ["# ghostbench compare", "", f"- A: `{c.a}`", f"- B: `{c.b}`",
           f"- Threshold {c.threshold:.1%}; top-1 gate {c.gate:g} point(s); throughput {c.basis}.",
           f"- Rule: {compare_mod.RULE.format(t=f'{c.threshold:.1%}')}"] + [f"- Note: {n}" for n in c.notes] + [""]
    out += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    for title, lines in _unmatched_lines(c):
        if lines:
            out += ["", f"## {title}", ""] + [f"- {x}" for x in lines]
    out += ["", summary_line(c)]
    return "\n".join(out) + "\n"


FORMATS = {"table": to_text, "md": to_markdown, "json": compare_mod.Comparison.to_json}
