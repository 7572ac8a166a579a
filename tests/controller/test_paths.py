"""One rule for the paths of a sweep file: relative to the sweep file, from whatever directory ghostbench runs
in; only the default store (no `store:` field) is relative to the current directory. `ghostbench status` and
`report` take the sweep file as well as the sweep id, and say where they looked when the sweep is not there."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from controller import cli
from controller import spec as spec_mod
from jobs import errors
from jobs.tools import fake_imagenet

CHECKSUM = "sha256:" + "0" * 64


def write(path: pathlib.Path, doc: dict) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_every_path_field_is_relative_to_the_sweep_file(tmp_path, monkeypatch):
    sweep_dir = tmp_path / "sweeps" / "here"
    path = write(sweep_dir / "s.yaml", {
        "store": "../results",
        "model": {"weights": "w/weights.pth", "checksum": CHECKSUM},
        "dataset": {"images": "file:data/images", "labels": "./data/val_label.txt"},
        "targets": [{"name": "npu", "backend": "acl", "engine": "atc", "accelerator": "Ascend310P3",
                     "device": "npu:0", "backend_options": {"acl_json_path": "acl.json", "log_level": 1}}],
    })
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (path, pathlib.Path("../sweeps/here/s.yaml")):
        s = spec_mod.load(given)
        assert s.store == str(tmp_path / "sweeps" / "results")
        assert s.model.weights == str(sweep_dir / "w" / "weights.pth")
        assert s.dataset.images == (sweep_dir / "data" / "images").as_uri()
        assert s.dataset.labels == str(sweep_dir / "data" / "val_label.txt")
        assert s.targets[0].backend_options == {"acl_json_path": str(sweep_dir / "acl.json"), "log_level": 1}


def test_absolute_paths_and_uris_are_kept_and_the_default_store_is_the_working_directorys(tmp_path):
    path = write(tmp_path / "s.yaml", {
        "model": {"weights": "https://example.com/w.pth", "checksum": CHECKSUM},
        "dataset": {"images": "s3://bucket/val", "labels": "/data/val_label.txt"},
        "targets": [{"name": "cpu"}],
    })
    s = spec_mod.load(path)
    assert (s.model.weights, s.dataset.images, s.dataset.labels) == ("https://example.com/w.pth", "s3://bucket/val",
                                                                     "/data/val_label.txt")
    assert s.store == spec_mod.DEFAULT_STORE  # as README says for `ghostbench demo`: ./ghostbench-store


def null_sweep(where: pathlib.Path) -> pathlib.Path:
    """A null-backend sweep in ``where`` whose every path is relative to its file."""
    names = fake_imagenet.make_image_set(where / "data" / "images", count=6, seed=2)
    fake_imagenet.write_labels(where / "data", names, [i % 3 for i in range(len(names))])
    return write(where / "sweep.yaml", {
        "name": "rel", "store": "store",
        "dataset": {"images": "data/images", "labels": "data/val_label.txt"},
        "targets": [{"name": "null", "backend": "null", "batch_sizes": [2]}],
        "reference": {"top1": 0.0, "top5": 0.0},
        "timing": {"warmup": 0, "min_batches": 1, "min_seconds": 0},
    })


def test_status_and_report_take_the_sweep_file_from_another_directory(tmp_path, monkeypatch, capsys):
    path = null_sweep(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["run", str(path)]) == 0
    assert (tmp_path / "project" / "store" / "sweeps" / "rel" / "report.md").is_file()
    assert not (elsewhere / spec_mod.DEFAULT_STORE).exists()
    capsys.readouterr()

    assert cli.main(["status", str(path)]) == 0
    assert capsys.readouterr().out.startswith("sweep rel: succeeded")
    assert cli.main(["report", str(path), "--format", "json"]) == 0
    assert '"runs"' in capsys.readouterr().out
    monkeypatch.chdir(tmp_path / "project")
    assert cli.main(["report", "sweep.yaml"]) == 0  # a relative file name
    assert "# ghostbench report" in capsys.readouterr().out

    # by id from a directory whose default store does not hold it: the error says where it looked
    monkeypatch.chdir(elsewhere)
    default_uri = (elsewhere / spec_mod.DEFAULT_STORE).as_uri()
    for command in ("status", "report"):
        assert cli.main([command, "rel"]) == errors.EXIT_BAD_INPUT
        (line,) = capsys.readouterr().err.splitlines()
        assert f"{default_uri}/sweeps/rel/" in line
        assert "default store" in line and "sweep file" in line
    # a --store wins over the sweep file's
    other = tmp_path / "other-store"
    assert cli.main(["status", str(path), "--store", str(other)]) == errors.EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.splitlines()
    assert f"{other.as_uri()}/sweeps/rel/" in line and "--store" in line


def test_a_sweep_file_that_is_not_there_is_one_line(tmp_path, capsys):
    assert cli.main(["status", str(tmp_path / "nope.yaml")]) == errors.EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.splitlines()
    assert "nope.yaml: no such sweep file" in line


@pytest.mark.parametrize("command", ["status", "report"])
def test_unknown_sweep_in_the_sweep_files_store_names_the_store(tmp_path, capsys, command):
    path = write(tmp_path / "s.yaml", {"name": "never-run", "store": "st",
                                       "dataset": {"images": "i", "labels": "l"}, "targets": [{"name": "t"}]})
    assert cli.main([command, str(path)]) == errors.EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.splitlines()
    assert f"{(tmp_path / 'st').as_uri()}/sweeps/never-run/" in line and f"the store of {path}" in line
