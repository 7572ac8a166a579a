"""What the Kubernetes executor's tests share: the namespace the fake API server serves, a settings file for it,
and a sweep file's plan as the controller makes it."""

from __future__ import annotations

import yaml

from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import store as store_mod

NAMESPACE = "ghostbench-test"
SECRET_VALUE = "fake-secret-value-do-not-leak"
"""The store Secret's secret key in the fake cluster: it must never appear in a Job."""


def write_settings(tmp_path, **extra):
    """``tmp_path/settings.yaml``: NAMESPACE, the store's ConfigMap and Secret ``ghostbench-store``, and ``extra``."""
    doc = {"namespace": NAMESPACE, "store_config_map": "ghostbench-store", "store_secret": "ghostbench-store", **extra}
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def load_plan(spec_path):
    spec = spec_mod.load(spec_path)
    return plan_mod.make_plan(spec, store_mod.open_store(spec.store).uri)
