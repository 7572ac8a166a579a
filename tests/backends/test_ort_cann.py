"""ONNX Runtime with the CANN execution provider (device ``cann:N``): option parsing and provider options.

The execution provider itself needs onnxruntime-cann and an Ascend NPU, so nothing here runs it;
what is checked is what ghostbench hands to ONNX Runtime, and the one-line failure where it is missing.
"""

from __future__ import annotations

import pytest
from onnxruntime.capi import onnxruntime_inference_collection as ort_collection

from jobs import errors, store
from jobs.artifacts import commit
from jobs.backends.onnxruntime import config
from jobs.stages import convert, infer, preprocess
from jobs.tools import fake_imagenet
from tests.support import tiny_model


def test_cann_device_gets_an_explicit_fp32_precision_mode():
    cfg = config.OnnxRuntimeConfig.check("cann:1", {})
    assert cfg.kind == "cann" and cfg.device_id == 1
    assert config.providers(cfg) == [
        ("CANNExecutionProvider", {"device_id": "1", "precision_mode": "must_keep_origin_dtype",
                                   "enable_cann_graph": "1"}),
        "CPUExecutionProvider",
    ]


def test_cann_options_override_and_are_strings():
    cfg = config.OnnxRuntimeConfig.check("cann", {
        "precision_mode": "force_fp16", "enable_cann_graph": False, "npu_mem_limit": 2 << 30,
        "op_select_impl_mode": "high_precision", "intra_op_threads": 2}, "fp16")
    assert config.provider_options(cfg, "CANNExecutionProvider") == {
        "device_id": "0", "precision_mode": "force_fp16", "enable_cann_graph": "0",
        "npu_mem_limit": str(2 << 30), "op_select_impl_mode": "high_precision"}
    assert cfg.intra_op_threads == 2


def test_provider_options_survive_onnxruntimes_normalization():
    providers = config.providers(config.OnnxRuntimeConfig.check("cann:0", {"precision_mode": "force_fp32"}))
    names, options = ort_collection.check_and_normalize_provider_args(
        providers, None, ["CANNExecutionProvider", "CPUExecutionProvider"])
    assert names == ["CANNExecutionProvider", "CPUExecutionProvider"]
    assert options[0] == {"device_id": "0", "precision_mode": "force_fp32", "enable_cann_graph": "1"}


def test_other_devices_keep_their_providers_with_the_precision_said_explicitly():
    assert config.providers(config.OnnxRuntimeConfig.check("cpu", {})) == ["CPUExecutionProvider"]
    assert config.providers(config.OnnxRuntimeConfig.check("tensorrt:1", {})) == [
        ("TensorrtExecutionProvider", {"device_id": "1", "trt_fp16_enable": "0"}),
        ("CUDAExecutionProvider", {"device_id": "1", "use_tf32": "0"}), "CPUExecutionProvider"]


@pytest.mark.parametrize("device, precision, provider, expected", [
    ("cuda:0", "fp32", "CUDAExecutionProvider", {"use_tf32": "0", "enable_cuda_graph": "1"}),  # ORT's default is 1
    ("cuda:0", "tf32", "CUDAExecutionProvider", {"use_tf32": "1", "enable_cuda_graph": "1"}),
    ("tensorrt:0", "fp16", "TensorrtExecutionProvider", {"trt_fp16_enable": "1"}),
    ("cann:0", "fp32", "CANNExecutionProvider", {"precision_mode": "must_keep_origin_dtype"}),
    ("cann:0", "fp16", "CANNExecutionProvider", {"precision_mode": "force_fp16"}),
])
def test_precision_reaches_the_provider_options(device, precision, provider, expected):
    options = config.provider_options(config.OnnxRuntimeConfig.check(device, {}, precision), provider)
    assert expected.items() <= options.items()


@pytest.mark.parametrize("device, precision, message", [
    ("cpu", "fp16", "expected one of fp32 on cpu, got 'fp16'"),
    ("cuda:0", "fp16", "expected one of fp32, tf32 on cuda"),
    ("tensorrt:0", "int8", "int8 needs a calibrated engine"),
])
def test_a_precision_the_device_cannot_do_is_refused(device, precision, message):
    with pytest.raises(errors.OptionError) as e:
        config.OnnxRuntimeConfig.check(device, {}, precision)
    assert e.value.option == "precision" and message in str(e.value)


@pytest.mark.parametrize("device, options, message", [
    ("cann:0", {"precision_mode": "fp16"}, "precision_mode: expected one of must_keep_origin_dtype, force_fp32"),
    ("cann:0", {"enable_cann_graph": "yes"}, "enable_cann_graph: expected true or false"),
    ("cann:0", {"npu_mem_limit": 0}, "npu_mem_limit: expected bytes"),
    ("cann:0", {"op_select_impl_mode": "fast"}, "op_select_impl_mode: expected one of high_precision"),
    ("cpu", {"precision_mode": "force_fp32"}, "option precision_mode: does not apply to device 'cpu'"),
    ("cann:x", {}, "device: expected one of cpu, cuda[:N], tensorrt[:N], cann[:N] for backend onnxruntime, got 'cann:x'"),
    ("cann:0", {"threads": 1}, "option threads: unknown option (did you mean 'intra_op_threads'?); allowed: intra_op_threads"),
])
def test_bad_cann_options(device, options, message):
    with pytest.raises(errors.BadInput) as e:
        config.OnnxRuntimeConfig.check(device, options)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cann_without_onnxruntime_cann_is_one_line_exit_3(tmp_path, capsys):
    import onnxruntime

    if "CANNExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CANN execution provider")
    images = tmp_path / "images"
    names = fake_imagenet.make_image_set(images, count=2, seed=1)
    fake_imagenet.write_labels(images, names, [0, 1])
    assert preprocess.main(["--images", str(images), "--labels", str(images / "val_label.txt"),
                            "--out", str(tmp_path / "data"), "--quiet"]) == 0
    with commit.Output(store.open_store(tmp_path / "export"), "export", {}) as out:
        tiny_model.write(out.dir / "model.onnx")
    assert convert.main(["--model", str(tmp_path / "export"), "--batch-size", "2", "--out", str(tmp_path / "engine"),
                         "--quiet"]) == 0
    code = infer.main(["--engine", str(tmp_path / "engine"), "--data", str(tmp_path / "data"), "--device", "cann:0",
                       "--batch-size", "2", "--out", str(tmp_path / "infer"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1
    assert "device 'cann:0' needs CANNExecutionProvider" in err and "onnxruntime-cann for cann" in err
