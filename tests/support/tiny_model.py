"""A tiny ONNX classifier (global average pool + linear) for testing the harness without torch."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NUM_CLASSES = 1000


def weights(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((3, NUM_CLASSES)).astype(np.float32)


def reference_logits(batch: np.ndarray, seed: int = 0) -> np.ndarray:
    pooled = batch.astype(np.float32).mean(axis=(2, 3))
    return pooled @ weights(seed)


def write(path: pathlib.Path, input_dtype: str = "float32", seed: int = 0, poisoned: bool = False) -> pathlib.Path:
    """The model at ``path``; ``poisoned``: class 2's weights NaN and class 1's first weight infinite, so every
    image's logits hold a NaN and (but for a channel mean of exactly 0) an infinity, as an fp16 overflow leaves them."""
    w = weights(seed)
    if poisoned:
        w[:, 2], w[:, 1] = np.nan, (np.inf, 0.0, 0.0)
    elem = TensorProto.FLOAT if input_dtype == "float32" else TensorProto.UINT8
    nodes = []
    src = "image"
    if input_dtype == "uint8":
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        src = "image_f"
    nodes += [
        helper.make_node("GlobalAveragePool", [src], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["class"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", elem, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("class", TensorProto.FLOAT, ["batch", NUM_CLASSES])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
