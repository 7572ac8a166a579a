"""Shared fixtures: the GhostNet facts and deterministic demo weights saved with torch.save; the plugins that
hold the fixtures more than one room uses (tests/support)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

# tests/support's helpers assert as the tests do: their failures get pytest's explanations too
pytest.register_assert_rewrite("tests.support")

from tests.support.paths import FACTS  # after the rewrite hook above

# Fixtures shared across rooms. pytest honours pytest_plugins only in this, the root conftest.
pytest_plugins = [
    "tests.support.s3server",  # a real S3 server (SeaweedFS `weed mini`): s3_server, s3_env, s3_bucket
    "tests.support.harness",  # infer and eval on a tiny ONNX model: harness_work
    "tests.support.acl",  # the acl backend against the fake aclruntime: acl_work, acl_fake
    "tests.support.preprocess_set",  # the preprocess stage's fake set: fake_set, images
]

DEMO_SEED = 1234


@pytest.fixture(scope="session")
def facts_dir() -> pathlib.Path:
    return FACTS


@pytest.fixture(scope="session")
def golden():
    """tests/facts/golden_weights.py as a module (make_state_dict, make_input, MANIFEST)."""
    spec = importlib.util.spec_from_file_location("golden_weights", FACTS / "golden_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def demo_weights(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """(path, "sha256:HEX") of deterministic GhostNet 1.0x weights, written once per session."""
    pytest.importorskip("torch")
    from jobs.models import weights

    path = tmp_path_factory.mktemp("weights") / "ghostnet_demo.pth"
    checksum = weights.save_deterministic_weights(path, "ghostnet_1.0x", DEMO_SEED)
    return path, checksum
