"""The export stage end to end (float32 and uint8 input), its failure modes, and the graph clean-up."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper

from jobs.artifacts import commit, records
from jobs.models import onnx_graph
from jobs.stages import export
from tests.support.paths import REPO_ROOT

GHOST_MODULES = 32  # 16 bottlenecks x 2 ghost modules, one `out[:, :oup]` each


def _export(out: pathlib.Path, weights, *extra: str) -> int:
    path, checksum = weights
    return export.main(["--model", "ghostnet_1.0x", "--weights", str(path), "--checksum", checksum,
                        "--out", str(out), "--quiet", *extra])


def _load(out: pathlib.Path):
    manifest = json.loads((out / commit.MANIFEST).read_text())
    return onnx.load(str(out / export.MODEL_FILE)), manifest["record"], manifest


@pytest.fixture(scope="module")
def float_export(tmp_path_factory, demo_weights):
    out = tmp_path_factory.mktemp("export-f32")
    assert _export(out, demo_weights) == 0
    return out


@pytest.fixture(scope="module")
def uint8_export(tmp_path_factory, demo_weights):
    out = tmp_path_factory.mktemp("export-u8")
    assert _export(out, demo_weights, "--input-dtype", "uint8", "--parity-batch", "3") == 0
    return out


def _run(path: pathlib.Path, feed: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["class"], {"image": feed})[0]


# --- successful exports ------------------------------------------------------------------------

@pytest.mark.parametrize("which, dtype", [("float_export", "float32"), ("uint8_export", "uint8")])
def test_export_contract(which, dtype, request):
    out = request.getfixturevalue(which)
    model, record, manifest = _load(out)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [11]
    assert record["opset"] == 11
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert inp.name == "image" and outp.name == "class"
    expected_type = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    assert inp.type.tensor_type.elem_type == expected_type
    assert outp.type.tensor_type.elem_type == TensorProto.FLOAT
    in_dims = inp.type.tensor_type.shape.dim
    assert in_dims[0].dim_param == "batch" and [d.dim_value for d in in_dims[1:]] == [3, 224, 224]
    assert outp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert record["input"] == {"name": "image", "dtype": dtype, "shape": ["batch", 3, 224, 224]}
    assert record["output"] == {"name": "class", "dtype": "float32", "shape": ["batch", 1000]}
    assert record["model"] == "ghostnet_1.0x"
    assert record["normalization_folded"] is (dtype == "uint8")
    assert manifest["params"]["input_dtype"] == dtype
    assert sorted(f["name"] for f in manifest["files"]) == ["export_record.json", "model.onnx"]
    assert json.loads((out / export.RECORD_FILE).read_text()) == record
    assert records.ExportRecord.from_dict(record).to_dict() == record  # reads back into its type
    assert set(record["versions"]) == {"torch", "onnx", "onnxruntime"}
    onnx.checker.check_model(model, full_check=True)
    assert not model.graph.initializer[0].HasField("data_location") or \
        model.graph.initializer[0].data_location == TensorProto.DEFAULT
    assert not list(out.glob("*.data"))


@pytest.mark.parametrize("which", ["float_export", "uint8_export"])
def test_noop_slices_removed(which, request):
    model, record, _ = _load(request.getfixturevalue(which))
    ops = [n.op_type for n in model.graph.node]
    assert "Slice" not in ops and "Identity" not in ops
    assert record["removed_count"] == GHOST_MODULES == len(record["removed"])
    assert record["removed_by_op"] == {"Slice": GHOST_MODULES}
    assert all(r["op"] == "Slice" and r["reason"].startswith("selects everything") for r in record["removed"])
    # each Slice had four Constant parameters, dropped with it
    assert record["constant_nodes_dropped"] == 4 * GHOST_MODULES
    assert record["nodes_after"] == len(model.graph.node)
    assert record["nodes_before"] - record["nodes_after"] == 5 * GHOST_MODULES


@pytest.mark.parametrize("which", ["float_export", "uint8_export"])
def test_parity_recorded(which, request):
    _, record, _ = _load(request.getfixturevalue(which))
    parity = record["parity"]
    assert parity["relative"] <= 1e-4
    assert parity["relative"] == pytest.approx(parity["max_abs_diff"] / parity["max_abs_logit"])
    assert parity["max_abs_logit"] > 1.0  # the check compared real logits, not zeros
    assert parity["top1_agreement"] == 1.0
    assert parity["batch"] == (3 if which == "uint8_export" else 4)


def test_record_names_weights_without_secrets(float_export, demo_weights):
    _, record, manifest = _load(float_export)
    path, checksum = demo_weights
    assert record["weights"] == {"uri": str(path), "checksum": checksum}
    assert manifest["params"]["checksum"] == checksum


def test_dynamic_batch_and_matches_torch(float_export, demo_weights):
    from jobs import models
    from jobs.models import weights

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 224, 224)).astype(np.float32)
    logits = _run(float_export / "model.onnx", x)
    assert logits.shape == (3, 1000)
    net = models.build(models.get("ghostnet_1.0x")).eval()
    weights.apply_state_dict(net, weights.load_state_dict(demo_weights[0]), "demo")
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(logits - expected)) <= 1e-4 * np.max(np.abs(expected))


def test_uint8_model_folds_normalization(float_export, uint8_export):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(2, 3, 224, 224), dtype=np.uint8)
    mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    normalized = ((pixels / 255.0 - mean) / std).astype(np.float32)
    from_float = _run(float_export / "model.onnx", normalized)
    from_uint8 = _run(uint8_export / "model.onnx", pixels)
    assert np.max(np.abs(from_uint8 - from_float)) <= 1e-4 * np.max(np.abs(from_float))


def test_rerun_of_committed_export_does_nothing(float_export, demo_weights):
    before = {p.name: p.stat().st_mtime_ns for p in float_export.iterdir()}
    manifest = (float_export / commit.MANIFEST).read_text()
    assert _export(float_export, demo_weights) == 0
    assert {p.name: p.stat().st_mtime_ns for p in float_export.iterdir()} == before
    assert (float_export / commit.MANIFEST).read_text() == manifest


def test_keep_noops(tmp_path, demo_weights):
    assert _export(tmp_path, demo_weights, "--keep-noops", "--parity-batch", "1") == 0
    model, record, _ = _load(tmp_path)
    assert [n.op_type for n in model.graph.node].count("Slice") == GHOST_MODULES
    assert record["removed_count"] == 0 and record["removed"] == []
    assert record["nodes_before"] == record["nodes_after"] == len(model.graph.node)
    assert record["parity"]["relative"] <= 1e-4


def test_parity_failure_commits_nothing(tmp_path, demo_weights, monkeypatch, capsys):
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)
    assert _export(tmp_path, demo_weights, "--parity-batch", "1") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ghostbench export: error: parity:") and "\n" not in err
    assert not (tmp_path / commit.MANIFEST).exists()
    assert not (tmp_path / "model.onnx").exists()


def test_nonfinite_logits_are_named_and_commit_nothing(tmp_path, demo_weights, capsys):
    # issue 20.2: a NaN in the logits is named as such (it used to read "differs from torch by nan")
    state = torch.load(demo_weights[0], weights_only=True)
    state["classifier.bias"][3] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    assert _export(tmp_path / "out", (path, "sha256:" + commit.file_digest(path)), "--parity-batch", "2") == 1
    err = capsys.readouterr().err.strip()
    assert err == ("ghostbench export: error: parity: torch's logits hold 2 NaN and 0 infinite value(s) for 2 of 2 "
                   "image(s); nothing committed")
    assert not (tmp_path / "out" / commit.MANIFEST).exists()


# --- bad input: exit 2, one line on stderr, nothing committed ----------------------------------

def _bad(tmp_path, capsys, argv) -> str:
    out = tmp_path / "out"
    rc = export.main([*argv, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("ghostbench export: error: ")
    assert not (out / commit.MANIFEST).exists()
    return err


def test_unknown_model(tmp_path, capsys, demo_weights):
    path, checksum = demo_weights
    err = _bad(tmp_path, capsys, ["--model", "ghostnet_2.0x", "--weights", str(path), "--checksum", checksum])
    assert "'ghostnet_2.0x'" in err and "ghostnet_1.0x" in err


def test_checksum_mismatch_fails_before_loading(tmp_path, capsys, demo_weights, monkeypatch):
    from jobs.models import weights

    def must_not_load(path):
        raise AssertionError("loaded weights whose checksum did not match")

    monkeypatch.setattr(weights, "load_state_dict", must_not_load)
    path, _ = demo_weights
    err = _bad(tmp_path, capsys, ["--model", "ghostnet_1.0x", "--weights", str(path),
                                  "--checksum", "md5:f7241350b4486bf00accbf9c3a192331"])
    assert "md5 is " in err and "expected f7241350b4486bf00accbf9c3a192331" in err


def test_malformed_checksum(tmp_path, capsys, demo_weights):
    err = _bad(tmp_path, capsys, ["--model", "ghostnet_1.0x", "--weights", str(demo_weights[0]),
                                  "--checksum", "md5-f7241350"])
    assert "--checksum" in err


def test_missing_weights_file(tmp_path, capsys):
    missing = tmp_path / "state_dict_73.98.pth"
    err = _bad(tmp_path, capsys, ["--model", "ghostnet_1.0x", "--weights", missing.as_uri(),
                                  "--checksum", "md5:f7241350b4486bf00accbf9c3a192331"])
    assert "no such file" in err


@pytest.mark.parametrize("write", [
    pytest.param(lambda p: p.write_bytes(b"\x00corrupt" * 64), id="corrupt"),
    pytest.param(lambda p: torch.save({"conv_stem.weight": torch.zeros(1)}, p), id="wrong-keys"),
    pytest.param(lambda p: torch.save([1, 2, 3], p), id="not-a-dict"),
])
def test_bad_weights_file(write, tmp_path, capsys):
    path = tmp_path / "w.pth"
    write(path)
    checksum = "sha256:" + commit.file_digest(path)
    err = _bad(tmp_path, capsys, ["--model", "ghostnet_1.0x", "--weights", str(path), "--checksum", checksum])
    assert str(path) in err


def test_help_subprocess():
    result = subprocess.run([sys.executable, "-m", "jobs.stages.export", "--help"], check=False, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for flag in ("--model", "--weights", "--checksum", "--opset", "--input-dtype", "--keep-noops",
                 "--parity-batch", "--out"):
        assert flag in result.stdout


# --- onnx_graph on small hand-built graphs -----------------------------------------------------

def _const_node(name: str, values) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=f"c_{name}",
                            value=numpy_helper.from_array(np.array(values, dtype=np.int64), name))


def _model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _int64s(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _check_same_outputs(before, after, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    a = ort.InferenceSession(before.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    b = ort.InferenceSession(after.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_graph_removes_full_slices_from_constants_and_initializers():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        _const_node("s0", [0]), _const_node("e0", [6]), _const_node("a0", [1]),
        helper.make_node("Slice", ["r", "s0", "e0", "a0"], ["sl0"], name="full_const"),  # dim 1 is 6
        helper.make_node("Slice", ["sl0", "s1", "e1", "a1", "st1"], ["sl1"], name="full_init"),
        helper.make_node("Identity", ["sl1"], ["id"], name="ident"),
        helper.make_node("Neg", ["id"], ["y"]),
    ]
    inits = [_int64s("s1", [0, -10]), _int64s("e1", [np.iinfo(np.int64).max, 100]),
             _int64s("a1", [1, -1]), _int64s("st1", [1, 1])]
    model = _model(nodes, [_tensor("x", ["n", 6, 5])], [_tensor("y", ["n", 6, 5])], inits)
    new, removed = onnx_graph.remove_noop_slices(model)
    assert [(r["op"], r["name"]) for r in removed] == [("Slice", "full_const"), ("Slice", "full_init"),
                                                       ("Identity", "ident")]
    assert [n.op_type for n in new.graph.node] == ["Relu", "Neg"]
    assert list(new.graph.node[1].input) == ["r"]
    assert not new.graph.initializer
    assert len(model.graph.node) == 8  # the input model is not modified
    onnx.checker.check_model(new, full_check=True)
    _check_same_outputs(model, new, (2, 6, 5))


def test_graph_keeps_slices_that_select_less_or_are_not_provable():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Slice", ["r", "zero", "five"], ["a"], name="partial"),  # 5 of 6 rows
        helper.make_node("Slice", ["r", "zero", "big", "ax1", "two"], ["b"], name="strided"),
        helper.make_node("Slice", ["r", "one", "big"], ["c"], name="offset"),
        helper.make_node("Slice", ["r", "zero", "big", "ax2"], ["d"], name="symbolic_end"),
        helper.make_node("Shape", ["r"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero_scalar"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "zero"], ["n1"]),
        helper.make_node("Slice", ["r", "zero", "n1"], ["e"], name="computed_end"),
    ]
    inits = [_int64s("zero", [0]), _int64s("five", [5]), _int64s("big", [6]), _int64s("ax1", [1]),
             _int64s("two", [2]), _int64s("one", [1]), _int64s("ax2", [2]),
             numpy_helper.from_array(np.array(0, dtype=np.int64), "zero_scalar")]
    outputs = [_tensor(n, None) for n in "abcde"]
    model = _model(nodes, [_tensor("x", [6, 6, "k"])], outputs, inits)
    new, removed = onnx_graph.remove_noop_slices(model)
    assert removed == []
    assert len(new.graph.node) == len(nodes) and len(new.graph.initializer) == len(inits)


def test_graph_slice_feeding_a_graph_output_keeps_the_output_name():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Slice", ["r", "s", "e"], ["y"], name="tail"),
        helper.make_node("Identity", ["r"], ["z"], name="keep_identity"),  # on a graph output: kept
    ]
    model = _model(nodes, [_tensor("x", [4, 3])], [_tensor("y", [4, 3]), _tensor("z", [4, 3])],
                   [_int64s("s", [0]), _int64s("e", [4])])
    new, removed = onnx_graph.remove_noop_slices(model)
    assert [r["name"] for r in removed] == ["tail"]
    assert [(n.op_type, list(n.input), list(n.output)) for n in new.graph.node] == [
        ("Relu", ["x"], ["y"]), ("Identity", ["y"], ["z"])]
    assert [o.name for o in new.graph.output] == ["y", "z"]
    onnx.checker.check_model(new, full_check=True)
    _check_same_outputs(model, new, (4, 3))


def test_graph_opset9_slice_attributes():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Slice", ["r"], ["s"], name="full", starts=[0], ends=[3], axes=[1]),
        helper.make_node("Slice", ["r"], ["p"], name="part", starts=[0], ends=[2], axes=[1]),
        helper.make_node("Add", ["s", "s"], ["y"]),
    ]
    model = _model(nodes, [_tensor("x", [2, 3])], [_tensor("y", [2, 3]), _tensor("p", [2, 2])], opset=9)
    new, removed = onnx_graph.remove_noop_slices(model)
    assert [r["name"] for r in removed] == ["full"]
    assert [n.op_type for n in new.graph.node] == ["Relu", "Slice", "Add"]
    onnx.checker.check_model(new, full_check=True)
