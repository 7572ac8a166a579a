"""The fake cluster the Kubernetes executor's tests run against (``cluster``)."""

from __future__ import annotations

import pytest

from tests.support.cluster import NAMESPACE, SECRET_VALUE
from tests.support.k8s_fake import FakeCluster
from tests.support.paths import REPO_ROOT


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A fake cluster with the store's ConfigMap and Secret (whose secret key is ``SECRET_VALUE``), and a kubeconfig
    for it in ``KUBECONFIG``."""
    with FakeCluster(REPO_ROOT) as fc:
        fc.add_config_map(NAMESPACE, "ghostbench-store", {"AWS_DEFAULT_REGION": "us-test-1"})
        fc.add_secret(NAMESPACE, "ghostbench-store", {"AWS_ACCESS_KEY_ID": "AKIAFAKE",
                                                      "AWS_SECRET_ACCESS_KEY": SECRET_VALUE})
        monkeypatch.setenv("KUBECONFIG", str(fc.kubeconfig(tmp_path / "kubeconfig", NAMESPACE)))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield fc
