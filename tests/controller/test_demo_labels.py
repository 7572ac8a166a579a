"""The demo's reference labels: the reference model's top-1 by the rule predictions are ranked by."""

from __future__ import annotations

import numpy as np
import pytest

from controller import demo
from jobs import errors


def test_reference_labels_break_ties_to_the_lower_class():
    logits = np.array([[1.0, 3.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    assert demo._labels(logits) == [1, 0]


def test_reference_labels_refuse_nonfinite_logits():
    # np.argmax takes a NaN for the best: the demo's labels would have been class 2 for this image
    logits = np.array([[1.0, 2.0, np.nan], [0.0, np.inf, 1.0]], dtype=np.float32)
    with pytest.raises(errors.GhostbenchError, match=r"hold 1 NaN and 1 infinite value\(s\) for 2 image\(s\)"):
        demo._labels(logits)
