"""Importing a user's ONNX classifier: check its graph against its model card, settle its batch axis, and fold
normalization into it for uint8 input.

What ghostbench needs of an imported graph (checked by ``inspect``, each failure one ``BadInput`` line naming the
field and what was found): one image input, float32, NCHW with 3 channels and the card's crop as height and width
(a symbolic height or width is set to it); one logits output ``[N, num_classes]``. Its opset is read here and
checked by each engine target (``jobs.converters.check_opset``). A fixed batch axis is made dynamic when the graph
still runs so (``settle_batch``); otherwise the file keeps it and only that batch size can run. Used by the export
stage (``--onnx``) and, on a local file, by the planner before any step starts.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from jobs import errors

BATCH_DIM = "batch"
"""The name a dynamic batch axis gets (as the seed's export names it)."""


@dataclasses.dataclass(frozen=True)
class GraphFacts:
    """What the graph says about itself, as found (before any change)."""

    input: dict[str, Any]
    """``{"name", "dtype", "shape"}``; a symbolic dim is its name, an unknown one None."""
    output: dict[str, Any]
    """``{"name", "dtype", "shape"}`` of the logits."""
    opset: int
    """The default (ai.onnx) domain's opset version."""
    fixed_batch: int | None
    """The input's batch size when the file fixes it, else None (dynamic)."""

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "opset": self.opset, "fixed_batch": self.fixed_batch}


def load(path: pathlib.Path, where: str) -> Any:
    """The ``onnx.ModelProto`` in the file at ``path``; ``BadInput`` naming ``where`` for a file that is no ONNX
    model, or one whose weights live in separate external-data files (import one self-contained file)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's and onnx's own errors for a bad file
        raise errors.BadInput(f"{where}: not a readable ONNX model ({str(e).splitlines()[0] if str(e) else e})") from e
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise errors.BadInput(f"{where}: its weights are in external data files; import one self-contained file "
                              "(onnx.save(model, path, save_as_external_data=False))")
    return model


def _dims(value_info) -> list[Any] | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _dtype(value_info) -> str:
    import onnx

    elem = value_info.type.tensor_type.elem_type
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem).name
    except Exception:  # noqa: BLE001 - an element type numpy has no name for
        return f"element type {elem}"


def opset_of(model) -> int:
    """The graph's ai.onnx opset version (0 when it declares none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def inspect(model, crop: int, num_classes: int, where: str, fields: Mapping[str, str]) -> GraphFacts:
    """Check the graph against the card (``crop``, ``num_classes``); ``BadInput`` naming ``where`` (the file's field)
    or, for a disagreement with the card, ``fields["crop"]`` / ``fields["num_classes"]``, and what was found."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs)
        raise errors.BadInput(f"{where}: expected one image input, found {len(inputs)} ({names or 'none'})")
    inp = inputs[0]
    dtype, dims = _dtype(inp), _dims(inp)
    if dims is None or len(dims) != 4:
        raise errors.BadInput(f"{where}: input {inp.name!r} should be an NCHW image [N, 3, H, W], found shape "
                              f"{dims if dims is not None else 'unknown'}")
    if dims[1] != 3:
        if dims[3] == 3:
            raise errors.BadInput(f"{where}: input {inp.name!r} is NHWC {dims}; expected NCHW [N, 3, H, W] "
                                  "(channels first, as the seed's tensors)")
        raise errors.BadInput(f"{where}: input {inp.name!r} has {dims[1]} channels at axis 1 {dims}; expected "
                              "3 (RGB, NCHW)")
    if dtype != "float32":
        raise errors.BadInput(f"{where}: input {inp.name!r} is {dtype}; expected float32 (normalized pixels; the "
                              "uint8 input mode folds normalization in itself)")
    for axis, dim in ((2, dims[2]), (3, dims[3])):
        if isinstance(dim, int) and dim != crop:
            raise errors.BadInput(f"{fields['crop']}: {crop}, but the graph's input {inp.name!r} is "
                                  f"{dims[2]}x{dims[3]} (shape {dims})")
    if len(graph.output) != 1:
        names = ", ".join(repr(o.name) for o in graph.output)
        raise errors.BadInput(f"{where}: expected one logits output, found {len(graph.output)} ({names})")
    out = graph.output[0]
    out_dims = _dims(out)
    if out_dims is not None and (len(out_dims) != 2 or (isinstance(out_dims[1], int) and out_dims[1] != num_classes)):
        found = f"{out_dims[1]} classes" if len(out_dims) == 2 else f"shape {out_dims}"
        raise errors.BadInput(f"{fields['num_classes']}: {num_classes}, but the graph's output {out.name!r} has "
                              f"{found} (expected [N, {num_classes}])")
    batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
    return GraphFacts(input={"name": inp.name, "dtype": dtype, "shape": dims},
                      output={"name": out.name, "dtype": _dtype(out), "shape": out_dims},
                      opset=opset_of(model), fixed_batch=batch)


def _set_dim(dim, value: int | str) -> None:
    dim.Clear()
    if isinstance(value, int):
        dim.dim_value = value
    else:
        dim.dim_param = value


def _with_batch(model, batch: int | str, crop: int):
    """A copy of ``model`` with the input's and output's first dim set to ``batch`` (a size or a name), the input's
    height and width to ``crop``, and the inferred intermediate shapes dropped (they may hold the old batch)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    initializers = {t.name for t in graph.initializer}
    (inp,) = [i for i in graph.input if i.name not in initializers]
    dims = inp.type.tensor_type.shape.dim
    _set_dim(dims[0], batch)
    for axis in (2, 3):
        _set_dim(dims[axis], crop)
    out_dims = graph.output[0].type.tensor_type.shape.dim
    if len(out_dims):
        _set_dim(out_dims[0], batch)
    del graph.value_info[:]
    return copy


def _runs(model, batch: int, crop: int, num_classes: int) -> str | None:
    """None when ONNX Runtime runs ``model`` on a batch of ``batch`` images giving ``[batch, num_classes]``; else
    why not, in one line."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # a graph that fails here is an expected finding, not a log line
    try:
        session = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        feed = np.zeros((batch, 3, crop, crop), dtype=np.float32)
        (logits,) = session.run(None, {session.get_inputs()[0].name: feed})[:1]
    except Exception as e:  # noqa: BLE001 - ONNX Runtime's own exception types
        return str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    if tuple(logits.shape) != (batch, num_classes):
        return f"batch {batch} gave logits of shape {list(logits.shape)}, expected [{batch}, {num_classes}]"
    return None


def settle_batch(model, facts: GraphFacts, crop: int, num_classes: int) -> tuple[Any, int | None, list[str]]:
    """``(model, fixed batch or None, changes)``: a symbolic height or width set to ``crop``; a fixed batch axis
    made dynamic when the graph still runs at another batch size (ONNX Runtime, CPU), else kept (only that batch
    size can run: the convert stage refuses others, the planner too). ``changes`` says what was done, in words."""
    changes: list[str] = []
    dims = facts.input["shape"]
    if not all(isinstance(d, int) for d in dims[2:]):
        changes.append(f"input {facts.input['name']!r}: height and width set to {crop} (were {dims[2]}x{dims[3]})")
    if facts.fixed_batch is None:
        return _with_batch(model, BATCH_DIM, crop), None, changes
    dynamic = _with_batch(model, BATCH_DIM, crop)
    probe = facts.fixed_batch + 1
    why = _runs(dynamic, probe, crop, num_classes)
    if why is None:
        changes.append(f"batch axis made dynamic (the file fixed it at {facts.fixed_batch}; checked at batch {probe})")
        return dynamic, None, changes
    changes.append(f"batch axis kept at {facts.fixed_batch}: the graph does not run at batch {probe} ({why})")
    return _with_batch(model, facts.fixed_batch, crop), facts.fixed_batch, changes


def fold_uint8(model, mean, std):
    """A copy of ``model`` taking uint8 NCHW pixels: ``(x - 255*mean) * (1 / (255*std))`` per channel in float32 in
    front of the graph, as the export stage folds it for a PyTorch model. The input keeps its name."""
    import onnx
    from onnx import helper, numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    initializers = {t.name for t in graph.initializer}
    (inp,) = [i for i in graph.input if i.name not in initializers]
    name = inp.name
    inner = name + "_normalized"
    for node in graph.node:
        node.input[:] = [inner if x == name else x for x in node.input]
    shift = np.array([255.0 * m for m in mean], dtype=np.float32).reshape(1, 3, 1, 1)
    scale = np.array([1.0 / (255.0 * s) for s in std], dtype=np.float32).reshape(1, 3, 1, 1)
    graph.initializer.extend([numpy_helper.from_array(shift, name + "_uint8_shift"),
                              numpy_helper.from_array(scale, name + "_uint8_scale")])
    pre = [helper.make_node("Cast", [name], [name + "_float"], to=onnx.TensorProto.FLOAT),
           helper.make_node("Sub", [name + "_float", name + "_uint8_shift"], [name + "_centred"]),
           helper.make_node("Mul", [name + "_centred", name + "_uint8_scale"], [inner])]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(pre + nodes)
    inp.type.tensor_type.elem_type = onnx.TensorProto.UINT8
    return copy
