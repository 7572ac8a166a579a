"""Tiny real image classifiers, built with torch in the tests, for importing ONNX files and exporting factories.

Two architectures: ``TinyConvNet`` (conv, batch norm, ReLU, max pool, conv, global average pool, linear) and
``TinyResNet`` (a stem and one residual block, average pool, linear), each with weights drawn from a fixed seed.
``write_onnx`` exports one with torch's TorchScript exporter (dynamic or fixed batch axis, any opset it writes);
``write_graph`` writes the malformed graphs a user might bring (two inputs, NHWC) with onnx.helper. ``tiny_convnet``
is a factory in the ``package.module:function`` form a sweep file names (``tests.support.classifiers:tiny_convnet``);
``raising_factory`` and ``not_a_module`` are the broken factories a user might name.
"""

from __future__ import annotations

import hashlib
import pathlib
import warnings

import numpy as np

NUM_CLASSES = 10
FACTORY = "tests.support.classifiers:tiny_convnet"


def _torch():
    import torch

    return torch


def tiny_convnet(num_classes: int = NUM_CLASSES):
    """A small conv net (about 3,000 parameters) with seeded weights and batch-norm statistics, in eval mode."""
    torch = _torch()
    nn = torch.nn

    class TinyConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                          nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.features(x)), 1))

    return _seeded(TinyConvNet(), 1)


def raising_factory():
    """A factory that fails as a user's can (an unknown variant)."""
    raise RuntimeError("no such variant: tiny_v9")


def not_a_module():
    """A factory that returns something other than a ``torch.nn.Module``."""
    return {"weights": "elsewhere"}


def tiny_resnet(num_classes: int = NUM_CLASSES, fixed_batch: int | None = None):
    """A stem and one residual block; ``fixed_batch``: the head reshapes to that many rows (a graph whose batch
    axis cannot be made dynamic, as some exported files are)."""
    torch = _torch()
    nn = torch.nn

    class TinyResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
                                       nn.Conv2d(12, 12, 3, padding=1), nn.BatchNorm2d(12))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(12, num_classes)

        def forward(self, x):
            y = self.stem(x)
            y = torch.relu(y + self.block(y))
            if fixed_batch is not None:
                return self.fc(self.pool(y).reshape(fixed_batch, 12))
            return self.fc(torch.flatten(self.pool(y), 1))

    return _seeded(TinyResNet(), 2)


def _seeded(net, seed: int):
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return net.eval()


def write_onnx(net, path: pathlib.Path, size: int, batch: int | None = None, opset: int = 11,
               input_name: str = "input", output_name: str = "logits") -> str:
    """Export ``net`` to ``path`` for ``size`` x ``size`` input; ``batch`` None: a dynamic batch axis, else fixed at
    ``batch``. Returns the file's ``"sha256:HEX"``."""
    torch = _torch()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(batch or 1, 3, size, size)
    axes = None if batch else {input_name: {0: "batch"}, output_name: {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (dummy,), str(path), dynamo=False, opset_version=opset, input_names=[input_name],
                          output_names=[output_name], dynamic_axes=axes)
    return checksum(path)


def write_graph(path: pathlib.Path, kind: str, size: int = 32) -> str:
    """A small classifier graph of a shape ghostbench refuses: ``two-inputs`` or ``nhwc``. Returns its checksum."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((3, NUM_CLASSES), dtype=np.float32), "w")
    if kind == "two-inputs":
        inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, size, size]) for n in ("a", "b")]
        nodes = [helper.make_node("Add", ["a", "b"], ["x"])]
    elif kind == "nhwc":
        inputs = [helper.make_tensor_value_info("x_nhwc", TensorProto.FLOAT, ["N", size, size, 3])]
        nodes = [helper.make_node("Transpose", ["x_nhwc"], ["x"], perm=[0, 3, 1, 2])]
    else:
        raise ValueError(kind)
    nodes += [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
              helper.make_node("MatMul", ["f", "w"], ["logits"])]
    graph = helper.make_graph(nodes, kind, inputs,
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", NUM_CLASSES])],
                              initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return checksum(path)


def checksum(path: pathlib.Path) -> str:
    return "sha256:" + hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def save_weights(net, path: pathlib.Path) -> str:
    """``net``'s state_dict saved with torch.save; returns its checksum."""
    torch = _torch()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), str(path))
    return checksum(path)
