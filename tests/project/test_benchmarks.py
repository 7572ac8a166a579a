"""The benchmark suite's own parts: the image set is deterministic and ImageNet-like, the runner
writes its JSON and table. Speeds are never asserted: benchmarks measure, tests check behaviour."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from benchmarks import __main__ as suite
from benchmarks import imagenet_like
from tests.support.paths import REPO_ROOT


def _digest(directory) -> str:
    h = hashlib.sha256()
    for p in sorted(directory.iterdir()):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_image_set_is_deterministic_and_imagenet_like(tmp_path):
    names = imagenet_like.make_image_set(tmp_path / "a", count=120, seed=5)
    imagenet_like.make_image_set(tmp_path / "b", count=120, seed=5)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    imagenet_like.make_image_set(tmp_path / "c", count=120, seed=6)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")

    kinds = collections.Counter()
    for name in names:
        with Image.open(tmp_path / "a" / name) as im:
            assert im.format == "JPEG"
            w, h = im.size
            kinds["portrait" if h > w else "landscape"] += 1
            kinds["small" if min(w, h) < 256 else "large" if max(w, h) > 700 else "typical"] += 1
            kinds[im.mode] += 1
    assert kinds["typical"] > 0.7 * len(names) and kinds["small"] and kinds["large"] and kinds["portrait"]
    assert kinds["RGB"] > 0.9 * len(names)
    labels = (tmp_path / "a" / imagenet_like.LABELS_FILE).read_text().split("\n")
    assert labels[0] == f"{names[0]} 0"


def test_greyscale_images_are_among_them(tmp_path):
    names = imagenet_like.make_image_set(tmp_path, count=300, seed=0)
    modes = collections.Counter(Image.open(tmp_path / n).mode for n in names)
    assert 0 < modes["L"] < 0.1 * len(names)


def test_repeated_sets_link_the_distinct_images(tmp_path):
    names = imagenet_like.make_image_set(tmp_path, count=10, seed=0, distinct=3)
    assert (tmp_path / names[7]).read_bytes() == (tmp_path / names[1]).read_bytes()
    assert (tmp_path / names[7]).stat().st_ino == (tmp_path / names[1]).stat().st_ino


def test_peak_rss_reports_the_child_process_alone(tmp_path):
    out = tmp_path / "rss.txt"
    code = "import numpy; a = numpy.ones(64 << 20, dtype=numpy.uint8)"  # 64 MiB touched
    (tmp_path / "grow.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    assert subprocess.run([sys.executable, "-m", "benchmarks.peak_rss", str(out), "grow"], env=env,
                          check=False).returncode == 0
    assert 64 * 1024 < int(out.read_text()) < 1024 * 1024  # KiB: the array, not this pytest process


def test_suite_runs_a_benchmark_and_writes_machine_versions_and_table(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert suite.main(["bytes", "--quick", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    doc = json.loads(out.read_text())
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["versions"]["numpy"]
    res = doc["results"]["bytes"]
    assert res["images"] == 6
    assert res["float32"]["read_per_image"] == pytest.approx(3 * 224 * 224 * 4, rel=0.01)
    assert res["uint8_vs_float32_read"] == pytest.approx(0.25, rel=0.01)
    printed = capsys.readouterr().out
    assert "summary" in printed and "bytes read per image, uint8/float32" in printed


def test_a_temporary_work_folder_is_removed(tmp_path, monkeypatch):
    from benchmarks import common

    with common.workdir(None) as work:
        (work / "big").write_bytes(b"x")
    assert not work.exists()
    with common.workdir(str(tmp_path / "kept")) as work:
        (work / "big").write_bytes(b"x")
    assert (tmp_path / "kept" / "big").exists()


@pytest.mark.slow
def test_every_benchmark_runs_in_quick_mode(tmp_path):
    """`python -m benchmarks --quick`: every benchmark end to end on tiny inputs (about a minute and a half)."""
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == set(suite.BENCHMARKS)
    for name, module in suite.BENCHMARKS.items():
        for label, figure in module.headlines(doc["results"][name]):
            rate = label.startswith("compare ")  # the A/A benchmark's rates: 0 is a figure too
            assert label in proc.stdout and (0 <= figure["median"] <= 1 if rate else figure["median"] > 0)
    assert "ghostbench compare --run-drift" in proc.stdout  # the A/A benchmark says what this host's drift is
