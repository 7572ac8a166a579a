"""Latency statistics in ais_infer's shape, and top-k / accuracy arithmetic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LATENCY_KEYS = ("min", "max", "mean", "median", "percentile(99%)", "count")


def latency_stats(values_ms: Sequence[float]) -> dict[str, float]:
    """min/max/mean/median/percentile(99%) in milliseconds, plus the count, as ais_infer reports them."""
    if len(values_ms) == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "median": 0.0, "percentile(99%)": 0.0, "count": 0}
    a = np.asarray(values_ms, dtype=np.float64)
    return {
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "percentile(99%)": float(np.percentile(a, 99)),
        "count": int(a.size),
    }


def throughput(batch_size: int, mean_compute_ms: float) -> float:
    """ais_infer's throughput: images per second from the mean compute time of one batch."""
    return 1000.0 * batch_size / mean_compute_ms if mean_compute_ms > 0 else 0.0


def topk(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k largest logits per row, best first (ties: lower index first)."""
    k = min(k, logits.shape[1])
    part = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    scores = np.take_along_axis(logits, part, axis=1)
    # stable sort by (-score, index) so equal scores come out in index order
    order = np.lexsort((part, -scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx.astype(np.int32), np.take_along_axis(scores, order, axis=1).astype(np.float32)


def topk_accuracy(top_indices: np.ndarray, labels: np.ndarray, max_k: int = 5) -> dict[int, float]:
    """Percentage of images whose label is among the first k predictions, for k = 1..max_k."""
    if len(labels) == 0:
        return {k: 0.0 for k in range(1, max_k + 1)}
    hits = top_indices[:, :max_k] == labels[:, None]
    cumulative = np.cumsum(hits, axis=1) > 0
    return {k: 100.0 * float(cumulative[:, k - 1].mean()) for k in range(1, min(max_k, hits.shape[1]) + 1)}
