"""The convert stage's atc target, with stand-in ``atc`` and ``npu-smi`` executables on PATH.

No CANN toolkit runs here: ``tests/support/fake_atc.py`` stands in for ``atc``. The argument lists and the
AIPP config are compared with golden files in ``tests/golden/atc/``. Regenerate those on purpose
(never in CI) after an intended change, and review the diff::

    python -m tests.converters.test_atc --regenerate-golden
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile

import pytest

from jobs import devices, store
from jobs.artifacts import commit
from jobs.converters import atc
from jobs.stages import convert
from tests.support import fake_atc, tiny_model
from tests.support.paths import GOLDEN_ATC
from tests.support.stand_ins import NPU_SMI_INFO, write_tool

SOC = "Ascend310P3"
DYNAMIC = [1, 4, 8, 16, 32]
# case -> (batch size, options); the golden argument list is <case>.args.json
CASES = {
    "float32_bs8": (8, {}),
    "uint8_bs8": (8, {"aipp": True}),
    "float32_dynamic": (8, {"dynamic_batch_sizes": DYNAMIC}),
    "uint8_dynamic": (8, {"aipp": True, "dynamic_batch_sizes": DYNAMIC}),
}
AIPP_GOLDEN = "aipp_rgb888_224.cfg"


def expected_args(case: str) -> list[str]:
    """The golden argument list of a case, from the converter's pure function (with placeholders)."""
    bs, options = CASES[case]
    opts = atc.AtcOptions.check({"soc_version": SOC, **options}, bs)
    prefix = atc.output_prefix(bs, opts.dynamic_batch_sizes)
    aipp = f"{atc.ENGINE_PLACEHOLDER}/{atc.AIPP_FILE}" if opts.aipp else None
    return atc.build_args(f"{atc.EXPORT_PLACEHOLDER}/model.onnx", f"{atc.ENGINE_PLACEHOLDER}/{prefix}", bs, SOC,
                          opts, aipp_config=aipp)


def regenerate_golden() -> None:
    GOLDEN_ATC.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        (GOLDEN_ATC / f"{case}.args.json").write_text(json.dumps(expected_args(case), indent=1) + "\n")
    (GOLDEN_ATC / AIPP_GOLDEN).write_text(atc.aipp_config(224))


def golden_args(case: str) -> list[str]:
    return json.loads((GOLDEN_ATC / f"{case}.args.json").read_text())


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("atc-exports")
    for mode in ("float32", "uint8"):
        with commit.Output(store.open_store(root / mode), "export", {}) as out:
            tiny_model.write(out.dir / "model.onnx", mode)
    return root


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """Installs a stand-in ``atc`` (mode given to the returned function) first on PATH."""
    record = tmp_path / "atc-argv.jsonl"
    pidfile = tmp_path / "atc.pid"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # failed runs' logs are kept under $TMPDIR
    monkeypatch.setenv("FAKE_ATC_RECORD", str(record))
    monkeypatch.setenv("FAKE_ATC_PIDFILE", str(pidfile))

    def install(mode: str = "ok", bin_dir: pathlib.Path | None = None) -> pathlib.Path:
        bin_dir = bin_dir or tmp_path / f"bin-{mode}"
        fake_atc.install(bin_dir, mode)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return bin_dir

    install.record = record
    install.pidfile = pidfile
    return install


def run_convert(exports, out, bs, *options, mode="float32", precision="fp32"):
    return convert.main(["--model", str(exports / mode), "--target", "atc", "--batch-size", str(bs),
                         "--precision", precision, *[a for o in options for a in ("--option", o)],
                         "--out", str(out), "--quiet"])


def options_of(case: str) -> list[str]:
    _, options = CASES[case]
    return [f"soc_version={SOC}"] + [f"{k}={json.dumps(v)}" for k, v in options.items()]


# -- golden argument lists and AIPP config -------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_argument_list_matches_golden(case):
    assert expected_args(case) == golden_args(case)


def test_fixed_batch_float32_is_exactly_the_seed_command():
    assert golden_args("float32_bs8") == [
        "atc", "--framework=5", "--model=<export>/model.onnx", "--input_format=NCHW",
        "--input_shape=image:8,3,224,224", "--output=<engine>/ghostnet_bs8", "--log=error",
        f"--soc_version={SOC}", "--precision_mode=must_keep_origin_dtype"]  # the seed's, plus fp32 said explicitly
    assert "--dynamic_batch_size=1,4,8,16,32" in golden_args("float32_dynamic")
    assert "--input_shape=image:-1,3,224,224" in golden_args("float32_dynamic")
    assert golden_args("uint8_bs8")[-2] == "--insert_op_conf=<engine>/aipp.cfg"


def test_aipp_config_matches_golden_and_the_published_constants():
    text = atc.aipp_config(224)
    assert text == (GOLDEN_ATC / AIPP_GOLDEN).read_text()
    for line in ("aipp_mode : static", "input_format : RGB888_U8", "src_image_size_w : 224",
                 "src_image_size_h : 224", "csc_switch : false",
                 "min_chn_0 : 123.675", "min_chn_1 : 116.28", "min_chn_2 : 103.53",
                 "var_reci_chn_0 : 0.0171247538", "var_reci_chn_1 : 0.0175070028",
                 "var_reci_chn_2 : 0.0174291939"):
        assert f"    {line}\n" in text


@pytest.mark.parametrize("case", list(CASES))
def test_stage_runs_atc_with_the_golden_arguments(case, exports, stand_in, tmp_path):
    stand_in("ok")
    bs, options = CASES[case]
    out = tmp_path / "engine"
    assert run_convert(exports, out, bs, *options_of(case)) == 0
    record = json.loads((out / "engine.json").read_text())
    assert record["atc"]["args"] == golden_args(case)
    # what the executable actually received: the same list, with the real paths
    (argv,) = [json.loads(line) for line in stand_in.record.read_text().splitlines()]
    output_flag = next(a for a in argv if a.startswith("--output="))
    staging = pathlib.Path(output_flag.partition("=")[2]).parent
    model = str(exports / ("float32" if case.startswith("float32") or options.get("aipp") else "uint8") / "model.onnx")
    real = [a.replace(f"{atc.EXPORT_PLACEHOLDER}/model.onnx", model).replace(atc.ENGINE_PLACEHOLDER, str(staging))
            for a in golden_args(case)[1:]]
    assert argv == real
    dynamic = options.get("dynamic_batch_sizes")
    assert record["file"] == ("ghostnet_dynamic.om" if dynamic else f"ghostnet_bs{bs}.om")
    assert (out / record["file"]).is_file() and (out / "atc.log").is_file()
    assert "ATC run success" in (out / "atc.log").read_text()
    assert record["batch_size"] == (None if dynamic else bs)
    assert record["dynamic_batch_sizes"] == dynamic
    assert record["soc_version"] == SOC and record["soc_version_from"] == "option"
    if options.get("aipp"):
        assert (out / "aipp.cfg").read_text() == (GOLDEN_ATC / AIPP_GOLDEN).read_text()
        assert record["input"] == {"name": "image", "dtype": "uint8", "format": "NHWC",
                                   "shape": [None if dynamic else bs, 224, 224, 3]}
        assert record["aipp"]["var_reci_chn"] == [0.0171247538, 0.0175070028, 0.0174291939]
    else:
        assert not (out / "aipp.cfg").exists()
        assert record["input"] == {"name": "image", "dtype": "float32", "format": "NCHW",
                                   "shape": [None if dynamic else bs, 3, 224, 224]}
    files = {f["name"] for f in commit.read_manifest(store.open_store(out))["files"]}
    assert files == {record["file"], "atc.log", "engine.json"} | ({"aipp.cfg"} if options.get("aipp") else set())


# -- the stage's behaviour around ATC ----------------------------------------------------------------

def last_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_atc_failure_keeps_its_log_and_commits_nothing(exports, stand_in, tmp_path, capsys):
    stand_in("fail")
    out = tmp_path / "engine"
    assert run_convert(exports, out, 4, f"soc_version={SOC}") == 1
    line = last_line(capsys)
    assert "atc failed (exit code 1) building ghostnet_bs4.om for Ascend310P3; nothing committed; its log: " in line
    kept = pathlib.Path(line.rpartition("its log: ")[2])
    assert kept.parent == tmp_path / atc.KEPT_LOGS
    assert "E19010" in kept.read_text()  # ATC's own error line, kept outside the discarded staging folder
    assert commit.read_manifest(store.open_store(out)) is None


def test_atc_hanging_is_killed_at_the_timeout(exports, stand_in, tmp_path, monkeypatch, capsys):
    # A shell stand-in that records its pid at once, then never finishes (exec keeps the pid).
    bin_dir = tmp_path / "bin-hang"
    bin_dir.mkdir()
    hang = bin_dir / "atc"
    hang.write_text('#!/bin/sh\necho "ATC start working now"\necho $$ > "$FAKE_ATC_PIDFILE"\nexec sleep 3600\n')
    hang.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "engine"
    assert run_convert(exports, out, 4, f"soc_version={SOC}", "timeout_s=1") == 1
    line = last_line(capsys)
    assert "atc did not finish within timeout_s=1 s and was killed; nothing committed; its log: " in line
    assert "ATC start working now" in pathlib.Path(line.rpartition("its log: ")[2]).read_text()
    assert commit.read_manifest(store.open_store(out)) is None
    pid = int(stand_in.pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # killed (with its process group) and reaped, not left running
        os.kill(pid, 0)


def test_atc_success_without_an_om_is_a_failure(exports, stand_in, tmp_path, capsys):
    stand_in("no-output")
    out = tmp_path / "engine"
    assert run_convert(exports, out, 4, f"soc_version={SOC}") == 1
    assert "atc exited 0 but wrote no ghostnet_bs4.om; nothing committed; its log: " in last_line(capsys)
    assert commit.read_manifest(store.open_store(out)) is None


def test_atc_not_installed_is_one_line_exit_2(exports, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert run_convert(exports, tmp_path / "engine", 4, f"soc_version={SOC}") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ghostbench convert: error: {atc.NOT_INSTALLED}"
    assert atc.NOT_INSTALLED == "atc is not installed here; this stage runs in the ATC image (images/atc)"


def test_soc_version_auto_reads_npu_smi(exports, stand_in, tmp_path):
    bin_dir = stand_in("ok")
    write_tool(bin_dir / "npu-smi", f"import sys\nassert sys.argv[1:] == ['info'], sys.argv\n"
                                    f"sys.stdout.write({NPU_SMI_INFO!r})\n")
    out = tmp_path / "engine"
    assert run_convert(exports, out, 4, "soc_version=auto") == 0
    record = json.loads((out / "engine.json").read_text())
    assert record["soc_version"] == "Ascend310P3" and record["soc_version_from"] == "npu-smi info"
    assert "--soc_version=Ascend310P3" in json.loads(stand_in.record.read_text())


def test_soc_version_auto_without_npu_smi(exports, stand_in, tmp_path, monkeypatch, capsys):
    bin_dir = stand_in("ok")
    monkeypatch.setenv("PATH", str(bin_dir))  # atc only: no npu-smi
    assert run_convert(exports, tmp_path / "engine", 4, "soc_version=auto") == 2
    assert "soc_version auto: npu-smi is not on PATH" in last_line(capsys)


def test_soc_version_auto_with_failing_npu_smi(exports, stand_in, tmp_path, capsys):
    bin_dir = stand_in("ok")
    write_tool(bin_dir / "npu-smi", "import sys\nsys.stderr.write('dcmi module initialize failed. ret is -8005\\n')\n"
                                    "sys.exit(255)\n")
    assert run_convert(exports, tmp_path / "engine", 4, "soc_version=auto") == 2
    assert "npu-smi info failed (exit 255): dcmi module initialize failed" in last_line(capsys)


def test_atc_version_is_recorded_from_the_toolkit(exports, stand_in, tmp_path):
    toolkit = tmp_path / "ascend-toolkit" / "latest" / "compiler"
    stand_in("ok", bin_dir=toolkit / "bin")
    (toolkit / "version.info").write_text("Version=7.0.0\nversion_dir=7.0.0\n")
    out = tmp_path / "engine"
    assert run_convert(exports, out, 4, f"soc_version={SOC}") == 0
    record = json.loads((out / "engine.json").read_text())
    assert record["atc"]["version"] == record["built_with"]["atc"] == "7.0.0"


@pytest.mark.parametrize("mode, options, message", [
    ("uint8", [f"soc_version={SOC}", "aipp=true"], "aipp=true needs the float32 export"),
    ("float32", [], "option soc_version: required"),
    ("float32", ["soc_version=310P3"], "option soc_version: expected auto or a chip name"),
    ("float32", [f"soc_version={SOC}", "dynamic_batch_sizes=[1,2]"], "option dynamic_batch_sizes: batch size 4 is not one of [1, 2]"),
    ("float32", [f"soc_version={SOC}", "offline_level=all"], "option offline_level: unknown option; allowed: soc_version, aipp"),
    ("float32", [f"soc_version={SOC}", "timeout_s=0"], "option timeout_s: expected a number of seconds > 0"),
    ("float32", [f"soc_version={SOC}", "precision_mode=fp64"], "option precision_mode: expected one of"),
])
def test_bad_options_are_one_line_exit_2(exports, stand_in, tmp_path, capsys, mode, options, message):
    stand_in("ok")
    assert run_convert(exports, tmp_path / "engine", 4, *options, mode=mode) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not stand_in.record.exists()  # ATC was never started


def test_precision_is_always_passed_as_atcs_precision_mode(exports, stand_in, tmp_path):
    # ATC's own default (force_fp16) is not fp32: the precision is always said
    stand_in("ok")
    out = tmp_path / "engine"
    assert run_convert(exports, out, 4, f"soc_version={SOC}", "precision_mode=force_fp32") == 0
    record = json.loads((out / "engine.json").read_text())
    assert record["atc"]["args"][-1] == "--precision_mode=force_fp32"
    assert record["precision_mode"] == "force_fp32" and record["precision"] == "fp32"
    out16 = tmp_path / "engine16"
    assert run_convert(exports, out16, 4, f"soc_version={SOC}", precision="fp16") == 0
    record = json.loads((out16 / "engine.json").read_text())
    assert record["atc"]["args"][-1] == "--precision_mode=force_fp16" and record["precision"] == "fp16"
    assert run_convert(exports, tmp_path / "bad", 4, f"soc_version={SOC}", "precision_mode=force_fp16") == 2


def test_every_ascend_accelerator_has_a_soc_version_atc_accepts():
    for acc in devices.CATALOGUE.values():
        if acc.kind == "npu":
            assert atc.AtcOptions.check({"soc_version": acc.soc_version}, 1).soc_version == acc.soc_version


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate-golden"]:
        sys.exit("usage: python -m tests.converters.test_atc --regenerate-golden   "
                 "(rewrites tests/golden/atc/; review the diff)")
    regenerate_golden()
    print(f"rewrote {GOLDEN_ATC}", file=sys.stderr)


def test_the_engine_file_is_named_after_the_model():
    assert atc.output_prefix(8, (), atc.engine_stem("ghostnet_1.0x")) == "ghostnet_bs8"  # the seed's, unchanged
    assert atc.output_prefix(8, (), atc.engine_stem(None)) == "ghostnet_bs8"  # an export record naming no model
    assert atc.output_prefix(8, (1, 8), atc.engine_stem("resnet50")) == "resnet50_dynamic"
    assert atc.engine_stem("../my.net v2") == "___my_net_v2"  # never a path: ATC writes <engine>/<stem>_bsN.om
