"""Shared fixtures: the GhostNet facts and deterministic demo weights saved with torch.save."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

FACTS = pathlib.Path(__file__).with_name("facts")
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


# A real S3 server (SeaweedFS `weed mini`) for the s3:// tests: see tests/s3server.py.
from tests.s3server import s3_bucket, s3_env, s3_server  # noqa: F401
