"""Names the API server would refuse: every Job name, label and annotation ghostbench writes, for every sweep
the spec accepts.

kubernetes-validate checks the manifests' schema but not the API server's rules for names and label values
(``k8s.io/apimachinery/pkg/util/validation``), so they are written out here and checked over generated
sweeps: sweep names, target names, file names a default sweep name comes from, batch sizes and shards, each
parsed by ``controller.spec.parse`` (what it refuses is skipped) and planned; every Job of
``manifests.jobs_for`` must then be one the API server takes.
"""

from __future__ import annotations

import re

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="pip install hypothesis (the test extra)")
from hypothesis import HealthCheck, assume, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import errors

# -- the API server's rules (apimachinery validation) ------------------------------------------------

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # IsDNS1123Label, <= 63
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # <= 253
QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")  # <= 63
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")  # <= 63


def name_problem(name: str) -> str | None:
    """Why a Job (or an Indexed Job's pod hostname) name is refused: a DNS-1123 label of at most 63."""
    if len(name) > 63:
        return f"longer than 63 ({len(name)})"
    if not DNS1123_LABEL.fullmatch(name):
        return "not a DNS-1123 label"
    return None


def key_problem(key: str) -> str | None:
    """Why a label or annotation key is refused (IsQualifiedName): ``[prefix/]name``."""
    parts = key.split("/")
    if len(parts) > 2:
        return "more than one '/'"
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix):
            return "prefix is not a DNS-1123 subdomain of at most 253"
    name = parts[-1]
    if not name or len(name) > 63 or not QUALIFIED_NAME_PART.fullmatch(name):
        return "name part is not 1-63 alphanumerics, '-', '_', '.' starting and ending alphanumeric"
    return None


def value_problem(value: str) -> str | None:
    """Why a label value is refused (IsValidLabelValue)."""
    if not isinstance(value, str):
        return f"not a string ({type(value).__name__})"
    if len(value) > 63:
        return f"longer than 63 ({len(value)})"
    if not LABEL_VALUE.fullmatch(value):
        return "not alphanumerics, '-', '_', '.' starting and ending alphanumeric"
    return None


def job_problems(job: dict) -> list[str]:
    """Everything in a Job that the API server would refuse by its name, label and annotation rules."""
    out = []
    meta, template = job["metadata"], job["spec"]["template"]
    name = meta["name"]
    if (p := name_problem(name)) is not None:
        out.append(f"metadata.name {name!r}: {p}")
    if len(name) > manifests.MAX_NAME:
        out.append(f"metadata.name {name!r}: longer than MAX_NAME {manifests.MAX_NAME}")
    if job["spec"].get("completionMode") == "Indexed":  # pod hostname <job>-<index>
        host = f"{name}-{job['spec']['completions'] - 1}"
        if (p := name_problem(host)) is not None:
            out.append(f"pod hostname {host!r}: {p}")
    for where, labels in (("metadata.labels", meta.get("labels") or {}),
                          ("template labels", template["metadata"].get("labels") or {})):
        for key, value in labels.items():
            if (p := key_problem(key)) is not None:
                out.append(f"{where} key {key!r}: {p}")
            if (p := value_problem(value)) is not None:
                out.append(f"{where}[{key!r}] = {value!r}: {p}")
    for where, notes in (("metadata.annotations", meta.get("annotations") or {}),
                               ("template annotations", template["metadata"].get("annotations") or {})):
        for key in notes:
            if (p := key_problem(key)) is not None:
                out.append(f"{where} key {key!r}: {p}")
    for key, value in (template["spec"].get("nodeSelector") or {}).items():  # validated as labels too
        if (p := key_problem(key)) is not None or (p := value_problem(value)) is not None:
            out.append(f"nodeSelector {key!r}: {value!r}: {p}")
    return out


@pytest.mark.parametrize("key, ok", [
    ("ghostbench.io/sweep", True), ("app.kubernetes.io/name", True), ("plain", True), ("a/b/c", False),
    ("Ghostbench.io/x", False), ("x/-bad", False), ("x/" + "a" * 64, False), ("a" * 254 + "/x", False),
])
def test_the_key_rule_itself(key, ok):
    assert (key_problem(key) is None) is ok


@pytest.mark.parametrize("value, ok", [("", True), ("v1.2_x-3", True), ("-x", False), ("x.", False), ("a" * 64, False),
                                       ("A", True), ("a b", False)])
def test_the_value_rule_itself(value, ok):
    assert (value_problem(value) is None) is ok


# -- generated sweeps -------------------------------------------------------------------------------

# names the spec's pattern allows, edge cases included ('.', '-', digits only, 40 characters), and anything
NAME_CHARS = "abcz09.-_A /é\n"
spec_like_names = st.from_regex(r"\A[a-z0-9]([a-z0-9.-]{0,38}[a-z0-9])?\Z")
any_names = st.text(alphabet=NAME_CHARS, min_size=0, max_size=45)
names = st.one_of(spec_like_names, any_names)
# file names a default sweep name is derived from: anything a file system holds
file_stems = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                     min_size=1, max_size=80)
batch_sizes = st.lists(st.one_of(st.integers(1, 64), st.integers(1, 10 ** 80)), min_size=1, max_size=3, unique=True)

SETTINGS = [k8s_settings.KubernetesSettings(),
            k8s_settings.parse_settings({"namespace": "bench", "instance": "ghostnet", "scheduler_name": "volcano",
                                      "scheduler_annotations": {"scheduling.volcano.sh/queue-name": "npu"}})]


@st.composite
def targets(draw) -> dict:
    kind = draw(st.sampled_from(["onnxruntime", "acl", "null"]))
    target: dict = {"name": draw(names), "batch_sizes": draw(batch_sizes),
                    "input_mode": draw(st.sampled_from(["float32", "uint8"]))}
    if kind == "acl":
        target.update(backend="acl", device="npu", engine="atc", accelerator="Ascend310P3")
        if draw(st.booleans()):
            target["convert_options"] = {"dynamic_batch_sizes": sorted(set(target["batch_sizes"])
                                                                       | set(draw(batch_sizes)))}
    elif kind == "null":
        target.update(backend="null", device="cpu")
    return target


@st.composite
def sweeps(draw) -> tuple[dict, str]:
    """A sweep document and the file it is read from."""
    doc: dict = {
        "dataset": {"images": "s3://datasets/imagenet/val", "labels": "s3://datasets/imagenet/val_label.txt",
                    "shards": draw(st.integers(1, 12))},
        "targets": draw(st.lists(targets(), min_size=1, max_size=3)),
        "store": "s3://ghostbench-results/prefix",
    }
    if draw(st.booleans()):
        doc["name"] = draw(names)
    folder = draw(st.sampled_from(["", "sweeps/", "/etc/ghostbench/"]))
    suffix = draw(st.sampled_from([".yaml", ".yml", "", ".sweep.yaml"]))
    return doc, f"{folder}{draw(file_stems)}{suffix}"


_DOC = {"dataset": {"images": "s3://datasets/imagenet/val", "labels": "s3://datasets/imagenet/val_label.txt"},
        "targets": [{"name": "ort-cpu"}], "store": "s3://ghostbench-results/prefix"}


def _plan(doc: dict, source: str) -> plan_mod.Plan:
    try:
        spec = spec_mod.parse(doc, source)
    except errors.BadInput:
        assume(False)  # the spec refuses it, with one line: fine
    return plan_mod.make_plan(spec)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(sweeps())
@example(({**_DOC, "targets": [{"name": "big", "batch_sizes": [10 ** 63]}]}, "sweep.yaml"))  # a 64-digit label
@example(({**_DOC, "targets": [{"name": "ort\n"}]}, "sweep.yaml"))  # "$" matched before a final newline
@example(({**_DOC, "name": "seed\n"}, "sweep.yaml"))
@example(({**_DOC}, "sweeps/v1.2 GhostNet (final).-.yaml"))  # a default name from a file name
def test_every_job_of_every_accepted_sweep_is_one_the_api_server_takes(case):
    plan = _plan(*case)
    for settings in SETTINGS:
        for job in manifests.jobs_for(plan, settings):
            assert job_problems(job) == [], job["metadata"]["name"]


@hsettings(max_examples=300, deadline=None)
@given(file_stems, st.sampled_from([".yaml", ".yml", ""]))
def test_a_default_sweep_name_is_one_the_spec_itself_accepts(stem, suffix):
    name = spec_mod._default_name(f"sweeps/{stem}{suffix}")
    assert spec_mod._NAME_RE.match(name), name
    assert value_problem(name) is None


@hsettings(max_examples=300, deadline=None)
@given(st.one_of(spec_like_names, st.text(alphabet="ab.-", min_size=1, max_size=40)))
def test_job_names_from_any_sweep_name_the_spec_allows(sweep):
    assume(spec_mod._NAME_RE.match(sweep))
    step = plan_mod.Step("0123456789abcdef", _any_params(), "export", "artifacts/export/0123456789abcdef")
    name = manifests.job_name(sweep, step)
    assert name_problem(name) is None and len(name) <= manifests.MAX_NAME, name


def _any_params():
    from jobs import params

    return params.EvalParams(runs=("s3://b/r",), data="s3://b/d", out="s3://b/e")


# -- the settings' own labels and annotations ----------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({"instance": "Ghost Net"}, "instance: expected a label value"),
    ({"instance": "x" * 64}, "instance: expected a label value"),
    ({"instance": "ghostnet-"}, "instance: expected a label value"),
    ({"scheduler_annotations": {"volcano/queue/name": "npu"}},
     "scheduler_annotations.volcano/queue/name: expected an annotation key"),
    ({"scheduler_annotations": {"-queue": "npu"}}, "scheduler_annotations.-queue: expected an annotation key"),
    ({"node_selector": {"Kubernetes.IO/arch": "amd64"}}, "node_selector.Kubernetes.IO/arch: expected a label key"),
    ({"node_selector": {"kubernetes.io/arch": "amd 64"}}, "node_selector.kubernetes.io/arch: expected a label value"),
])
def test_settings_refuse_labels_and_annotations_the_api_server_would(data, message):
    with pytest.raises(k8s_settings.SettingsError, match=re.escape(message)):
        k8s_settings.parse_settings(data, "settings.yaml")


@pytest.mark.parametrize("data", [
    {"instance": "ghostnet"}, {"instance": "Release_1.2"}, {"instance": ""},
    {"scheduler_annotations": {"scheduling.volcano.sh/queue-name": "npu", "plain-key": "x"}},
    {"node_selector": {"kubernetes.io/arch": "amd64", "host-arch": "huawei-arm", "empty": ""}},
])
def test_settings_keep_what_the_api_server_takes(data):
    k8s_settings.parse_settings(data, "settings.yaml")
