"""Where a result was measured: the ghostbench revision a report names is the checkout's."""

from __future__ import annotations

import subprocess

import pytest

from jobs.devices import provenance
from tests.support.paths import REPO_ROOT


@pytest.mark.skipif(not (REPO_ROOT / ".git").exists(), reason="not a git checkout")
def test_the_revision_is_the_checkouts_commit():
    # the module moved into jobs/devices/ and looked for .git in jobs/: every report said "no git revision"
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    provenance.revision.cache_clear()
    assert (provenance.revision() or "").removesuffix("+dirty") == head
