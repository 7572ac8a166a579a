"""The one place that knows where things are: the repository root and the tests' data folders."""

from __future__ import annotations

import pathlib

TESTS = pathlib.Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS.parent
FACTS = TESTS / "facts"  # the GhostNet facts: checkpoint layout, golden logits, golden preprocessing
GOLDEN = TESTS / "golden"
GOLDEN_ATC = GOLDEN / "atc"  # atc argument lists and the AIPP config (tests/converters/test_atc.py)
GOLDEN_MANIFESTS = GOLDEN / "manifests"  # Job manifests (tests/kubernetes/test_manifests.py)
