"""The stages' shared skeleton (jobs/stages/cli.py): a committed --out is "nothing to do" only for the same
parameters; other parameters are refused, naming each flag with its committed and its given value."""

from __future__ import annotations

import importlib
import os
import pathlib

import pytest

from jobs import errors, params
from jobs import store as store_mod
from jobs.artifacts import commit
from jobs.stages import cli

MD5 = "md5:" + "ab" * 16
OTHER_MD5 = "md5:" + "cd" * 16


def commit_fake(where: pathlib.Path, stage: str, recorded: dict) -> None:
    """A committed output at ``where`` as the stage would have left it (one file, its manifest)."""
    with commit.Output(store_mod.open_store(where), stage, recorded) as out:
        (out.dir / "x.txt").write_text("x")


def stage_main(stage: str, argv: list[str], monkeypatch) -> int:
    """Run the stage's command; its own work must not start (the skeleton decides before it)."""
    module = importlib.import_module(f"jobs.stages.{stage}")

    def no_run(*a, **k):
        raise AssertionError("the stage ran")

    monkeypatch.setattr(module, "run", no_run)
    return module.main([*argv, "--quiet"])


def error_line(capsys, stage: str) -> str:
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith(f"ghostbench {stage}: error:")]
    return line


# stage -> (committed argv, a changed flag with its new value, the committed and given values as reported)
CASES = {
    "export": (["--model", "ghostnet_1.0x", "--weights", "/w/weights.pth", "--checksum", MD5],
               ("--checksum", OTHER_MD5), repr(MD5), repr(OTHER_MD5)),
    "convert": (["--model", "{tmp}/export", "--batch-size", "8"], ("--batch-size", "16"), "8", "16"),
    "preprocess": (["--images", "{tmp}/images", "--labels", "{tmp}/val_label.txt", "--limit", "3"],
                   ("--mode", "uint8"), "'float32'", "'uint8'"),
    "infer": (["--engine", "{tmp}/engine", "--data", "{tmp}/data", "--batch-size", "4"],
              ("--warmup", "5"), "2", "5"),
    "eval": (["--run", "{tmp}/infer-bs1", "--run", "{tmp}/infer-bs4", "--data", "{tmp}/data"],
             ("--gate", "2.5"), "1.0", "2.5"),
}


def committed(stage: str, tmp: pathlib.Path) -> tuple[list[str], pathlib.Path]:
    """The argv of the committed call (without --out) and where its output is committed."""
    argv = [a.replace("{tmp}", str(tmp)) for a in CASES[stage][0]]
    out = tmp / "out"
    p = params.STAGES[stage].parse([*argv, "--out", str(out)])
    where = out / "shard-00000-of-00001" if stage == "preprocess" else out
    recorded = p.to_dict()
    if stage == "export":
        recorded["weights"] = "/w/weights.pth"
    if stage == "convert":
        recorded["model_sha256"] = "0" * 64  # a derived field the stage adds: not a parameter
    commit_fake(where, stage, recorded)
    return argv, out


@pytest.mark.parametrize("stage", sorted(CASES))
def test_changed_parameter_on_a_committed_output_is_refused(tmp_path, monkeypatch, capsys, stage):
    argv, out = committed(stage, tmp_path)
    flag, value, old, new = CASES[stage][1][0], CASES[stage][1][1], CASES[stage][2], CASES[stage][3]
    code = stage_main(stage, [*argv, flag, value, "--out", str(out)], monkeypatch)
    assert code == errors.EXIT_BAD_INPUT
    line = error_line(capsys, stage)
    assert "committed with other parameters" in line
    assert f"{flag} committed {old}, given {new}" in line
    assert "--force" in line


@pytest.mark.parametrize("stage", sorted(CASES))
def test_same_parameters_are_nothing_to_do(tmp_path, monkeypatch, stage):
    argv, out = committed(stage, tmp_path)
    assert stage_main(stage, [*argv, "--out", str(out)], monkeypatch) == errors.EXIT_OK


def test_same_locations_written_differently_are_the_same(tmp_path, monkeypatch):
    committed("eval", tmp_path)
    monkeypatch.chdir(tmp_path)
    relative = ["--run", "infer-bs1/", "--run", f"file://{tmp_path}/infer-bs4", "--data", "./data"]
    assert stage_main("eval", [*relative, "--out", "out"], monkeypatch) == errors.EXIT_OK


def test_export_compares_the_checksum_as_recorded_and_not_the_weights_location(tmp_path, monkeypatch):
    """The export records the checksum in lower case and the weights' URI without credentials; a rerun with
    the checksum in capitals and the weights elsewhere (with credentials) makes the same output."""
    argv, out = committed("export", tmp_path)
    argv = ["--model", "ghostnet_1.0x", "--weights", "https://user:secret@example.com/w.pth",
            "--checksum", MD5.upper()]
    assert stage_main("export", [*argv, "--out", str(out)], monkeypatch) == errors.EXIT_OK


def test_several_changes_are_named_in_one_line(tmp_path, monkeypatch, capsys):
    argv, out = committed("infer", tmp_path)
    code = stage_main("infer", [*argv, "--warmup", "5", "--option", "intra_op_threads=1", "--out", str(out)],
                      monkeypatch)
    assert code == errors.EXIT_BAD_INPUT
    line = error_line(capsys, "infer")
    assert "--warmup committed 2, given 5" in line and "--option committed (none), given intra_op_threads=1" in line


def test_changed_upstream_is_refused(tmp_path, monkeypatch, capsys):
    argv, out = committed("convert", tmp_path)
    argv[argv.index("--model") + 1] = str(tmp_path / "other-export")
    assert stage_main("convert", [*argv, "--out", str(out)], monkeypatch) == errors.EXIT_BAD_INPUT
    assert "--model committed 'file://" in error_line(capsys, "convert")


def test_force_runs_the_stage_again(tmp_path, monkeypatch):
    argv, out = committed("export", tmp_path)
    ran = []
    module = importlib.import_module("jobs.stages.export")
    monkeypatch.setattr(module, "run", lambda p, store: ran.append(p.checksum))
    assert module.main([*argv, "--checksum", OTHER_MD5, "--out", str(out), "--force", "--quiet"]) == 0
    assert ran == [OTHER_MD5]


def test_a_real_preprocess_rerun_with_other_parameters_is_refused(tmp_path, capsys):
    from jobs.stages import preprocess
    from jobs.tools import fake_imagenet

    images = tmp_path / "images"
    names = fake_imagenet.make_image_set(images, count=4, seed=1)
    fake_imagenet.write_labels(images, names, [1, 2, 3, 4])
    argv = ["--images", str(images), "--labels", str(images / fake_imagenet.LABELS_FILE), "--out",
            str(tmp_path / "prep"), "--quiet"]
    assert preprocess.main([*argv, "--limit", "2"]) == 0
    assert preprocess.main([*argv, "--limit", "2"]) == 0
    assert preprocess.main([*argv, "--limit", "3"]) == errors.EXIT_BAD_INPUT
    assert "--limit committed 2, given 3" in error_line(capsys, "preprocess")
    assert preprocess.main([*argv, "--limit", "3", "--force"]) == 0


def test_location_normal_form():
    here = pathlib.Path(os.getcwd()).resolve()
    assert cli._location("a/b/") == (here / "a/b").as_uri()
    assert cli._location(f"file://{here}/a/b") == (here / "a/b").as_uri()
    assert cli._location("s3://bucket/p/") == "s3://bucket/p"
    assert cli._location(["a", None]) == [(here / "a").as_uri(), None]
