"""Top-k and accuracy arithmetic (latency statistics are ``jobs.artifacts.records.LatencyStats``).

The ranking rule, everywhere logits are ranked (predictions, parity checks, reference labels): best first; equal
logits in index order (the lower class first); ``+inf`` above every number, ``-inf`` below, and NaN below
everything, ``-inf`` included. It is what a stable descending sort gives (``np.argsort(-x, kind="stable")``).
"""

from __future__ import annotations

import dataclasses

import numpy as np


def topk(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k largest logits per row, best first, by the module's ranking rule (ties: lower
    index first; NaN last).

    ``np.argpartition`` alone is not enough: which of several equal logits it keeps is arbitrary (a row of equal
    logits gives classes 984-988). It finds the k-th largest value; a row where exactly k logits reach it has no
    tie at the cut, and its k are sorted by (score, index). The other rows (a tie across the cut, or NaN among
    the k) take a stable sort: rare, and exact."""
    x = np.asarray(logits)
    k = min(k, x.shape[1])
    part = np.argpartition(-x, k - 1, axis=1)[:, :k]
    scores = np.take_along_axis(x, part, axis=1)
    kth = scores.min(axis=1, keepdims=True)  # NaN when a NaN is among the k: that row is not clear
    clear = np.count_nonzero(x >= kth, axis=1) == k
    order = np.lexsort((part, -scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    if not clear.all():
        rest = ~clear
        idx[rest] = np.argsort(-x[rest], axis=1, kind="stable")[:, :k]
    return idx.astype(np.int32), np.take_along_axis(x, idx, axis=1).astype(np.float32)


def top1(logits: np.ndarray) -> np.ndarray:
    """Each row's best class by the ranking rule (``np.argmax`` agrees on ties but takes a NaN for the best)."""
    return topk(logits, 1)[0][:, 0]


@dataclasses.dataclass(frozen=True)
class NonFiniteCount:
    """The NaN and infinite values among some logits, and the rows (images) that hold any."""

    rows: np.ndarray
    """Indices of the rows with at least one non-finite logit."""
    nan: int
    posinf: int
    neginf: int


def nonfinite(logits: np.ndarray) -> NonFiniteCount | None:
    """The non-finite logits of a batch (one row per image); None when every logit is finite (the usual case,
    one pass over the batch)."""
    x = np.asarray(logits)
    finite = np.isfinite(x)
    if finite.all():
        return None
    nan = np.isnan(x)
    return NonFiniteCount(rows=np.flatnonzero(~finite.all(axis=1)), nan=int(nan.sum()),
                          posinf=int(np.count_nonzero(x == np.inf)), neginf=int(np.count_nonzero(x == -np.inf)))


def topk_accuracy(top_indices: np.ndarray, labels: np.ndarray, max_k: int = 5) -> dict[int, float]:
    """Percentage of images whose label is among the first k predictions, for k = 1..max_k."""
    if len(labels) == 0:
        return {k: 0.0 for k in range(1, max_k + 1)}
    hits = top_indices[:, :max_k] == labels[:, None]
    cumulative = np.cumsum(hits, axis=1) > 0
    return {k: 100.0 * float(cumulative[:, k - 1].mean()) for k in range(1, min(max_k, hits.shape[1]) + 1)}
