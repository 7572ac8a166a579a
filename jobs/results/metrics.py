"""Top-k and accuracy arithmetic (latency statistics are ``jobs.artifacts.records.LatencyStats``)."""

from __future__ import annotations

import numpy as np


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
