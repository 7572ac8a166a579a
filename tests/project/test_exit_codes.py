"""Every exit code the README lists is what ghostbench returns for that failure, each produced by a real one.

The README's sentence "Exit codes: 0 success, 1 ..., 7 ..." is parsed; each code it lists must have a scenario
here that makes the failure it names (a sweep that succeeds, a step that fails, a wrong sweep file, a missing
package, a run below the gate, a regression, an undecided comparison, an S3 store that stops answering), and
the scenario must exit with that code. A code added to the README without a scenario fails the test, and so
does a scenario whose failure maps to another code.
"""

from __future__ import annotations

import re
import subprocess
import sys

import botocore.exceptions
import pytest
import yaml

from controller import cli
from jobs import errors
from jobs.artifacts import records
from jobs.store import s3_connection
from tests.support import s3server
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep


def readme_codes() -> dict[int, str]:
    """{code: what the README says it means} from its "Exit codes:" sentence."""
    text = " ".join((REPO_ROOT / "README.md").read_text().split())
    listed = re.search(r"Exit codes: (.*?)\. `ghostbench status`", text)
    assert listed, "README: no 'Exit codes: ...' sentence before `ghostbench status`"
    return {int(code): meaning.strip() for code, meaning in re.findall(r"(?:^|, )(\d+) (.*?)(?=, \d+ |$)",
                                                                         listed.group(1))}


def _sweep(tmp_path, top1: float = 0.0, **kw):
    spec = make_sweep(tmp_path, targets=[{"name": "null", "backend": "null", "batch_sizes": [2]}], shards=1, **kw)
    doc = yaml.safe_load(spec.read_text())
    doc["reference"] = {"top1": top1, "top5": top1, "gate": 1.0}  # the null backend always says class 0
    spec.write_text(yaml.safe_dump(doc))
    return spec


def success(tmp_path, monkeypatch):
    return cli.main(["run", str(_sweep(tmp_path))])


def step_failed(tmp_path, monkeypatch):
    spec = _sweep(tmp_path)  # makes the images
    images = sorted(p.name for p in (tmp_path / "images").iterdir() if p.name != "val_label.txt")
    (tmp_path / "images" / images[0]).write_bytes(b"not an image")  # preprocess refuses it (no skip_bad)
    return cli.main(["run", str(spec)])


def bad_input(tmp_path, monkeypatch):
    spec = _sweep(tmp_path)
    doc = yaml.safe_load(spec.read_text())
    doc["targets"][0]["device"] = "tpu"
    spec.write_text(yaml.safe_dump(doc))
    return cli.main(["run", str(spec)])


def missing_dependency(tmp_path, monkeypatch):
    """An s3:// store where boto3 is not installed (ghostbench[s3] left out): blocked in a fresh interpreter."""
    code = ("import sys; sys.modules['boto3'] = None; from controller import cli; "
            "sys.exit(cli.main(['status', 's', '--store', 's3://bucket/p']))")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          check=False).returncode


def gate_failed(tmp_path, monkeypatch):
    return cli.main(["run", str(_sweep(tmp_path, top1=99.0))])


def _report(tmp_path, name: str, per_second: float) -> str:
    run = records.ReportRun(
        run=f"store/artifacts/infer/{name}", target="t", backend="null", device="cpu", input_mode="float32",
        batch_size=1, num_images=48, throughput=per_second, compute_mean_ms=1000.0 / per_second, compute_p99_ms=1.0,
        end_to_end_images_per_second=per_second, passes=1, accuracy={"1": 75.0, "5": 90.0}, gate_pass=True,
        precision="fp32", provider="CPUExecutionProvider",
        repetitions=tuple(per_second * x for x in (1.0, 1.3, 0.8, 1.2, 0.9)))  # noisy: 5% changes stay hidden
    report = records.Report(model="ghostnet_1.0x", reference=records.Reference(75.0, 90.0, 1.0, "agreement"),
                            runs=(run,), accelerators={"t": ""})
    path = tmp_path / f"{name}.json"
    path.write_text(report.to_json())
    return str(path)


def regression(tmp_path, monkeypatch):
    return cli.main(["compare", _report(tmp_path, "a", 1000.0), _report(tmp_path, "b", 400.0)])


def inconclusive(tmp_path, monkeypatch):
    return cli.main(["compare", _report(tmp_path, "a", 1000.0), _report(tmp_path, "b", 1000.0),
                     "--inconclusive", "fail"])


def store_unavailable(tmp_path, monkeypatch):
    """An S3 endpoint that answered before (here: the controller says so) and answers no more."""
    endpoint = f"http://127.0.0.1:{s3server.free_ports(1)[0]}"
    for name, value in {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                        "AWS_DEFAULT_REGION": "us-east-1", s3_connection.REACHED_ENV: endpoint,
                        "AWS_MAX_ATTEMPTS": "1", s3_connection.DEADLINE_ENV: "0"}.items():
        monkeypatch.setenv(name, value)
    return cli.main(["status", "s", "--store", "s3://bucket/p"])


SCENARIOS = {0: success, 1: step_failed, 2: bad_input, 3: missing_dependency, 4: gate_failed, 5: regression,
             6: inconclusive, 7: store_unavailable}


def test_every_listed_code_has_a_scenario():
    assert set(readme_codes()) == set(SCENARIOS), readme_codes()
    defined = {getattr(errors, n) for n in vars(errors) if n.startswith("EXIT_")}
    assert defined == set(SCENARIOS), "jobs.errors defines an exit code the README does not list, or the reverse"


@pytest.mark.parametrize("code", sorted(SCENARIOS))
def test_each_listed_code_is_what_its_failure_gives(code, tmp_path, monkeypatch, capsys):
    got = SCENARIOS[code](tmp_path, monkeypatch)
    assert got == code, f"README: {code} {readme_codes().get(code)!r}; this failure exits {got}: " + \
        capsys.readouterr().err[-2000:]


def test_a_store_that_keeps_failing_is_unavailable_not_bad_input():
    """5xx answers until the deadline: the other branch of the deadline (the server answers, but only errors)."""
    conn = s3_connection.Connection("bucket", deadline_s=0.0, sleep=lambda s: None)
    busy = botocore.exceptions.ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"},
                                            "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")

    def fail():
        raise busy

    with pytest.raises(errors.StoreUnavailable, match="kept failing: SlowDown .*rerun once it is back") as e:
        conn.call("reading x", fail, check=False)
    assert e.value.exit_code == errors.EXIT_STORE_UNAVAILABLE == 7

