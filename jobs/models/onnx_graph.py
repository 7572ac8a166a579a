"""Graph clean-ups on ``onnx.ModelProto`` that provably leave every output unchanged.

``remove_noop_slices`` drops Slice nodes that select the whole of every sliced axis (the TorchScript
exporter writes one for each ``x[:, :n]`` where ``n`` is already the size), and Identity nodes.
ONNX Runtime's CPU layout optimizer inserts reorders around such Slices, so they cost real time.
A Slice is removed only when its parameters are constants and the sliced dims are statically known.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

_INT64_MAX = np.iinfo(np.int64).max


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _used_names(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name read by a node of ``graph`` or of its subgraphs, plus the graph outputs."""
    used = {o.name for o in graph.output}
    for node in graph.node:
        used.update(i for i in node.input if i)
        for sub in _subgraphs(node):
            used |= _used_names(sub)
    return used


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Make every reader of ``old`` (subgraphs included, unless they shadow it) read ``new``."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for sub in _subgraphs(node):
            shadowed = ({t.name for t in sub.initializer} | {v.name for v in sub.input}
                        | {o for n in sub.node for o in n.output})
            if old not in shadowed:
                _rename_input(sub, old, new)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Static shapes known for the main graph's tensors (None for a symbolic or unknown dim)."""
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    except (shape_inference.InferenceError, ValueError):  # an aid only: without it fewer Slices are provable
        inferred = model
    out: dict[str, list[int | None]] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in g.initializer:
        out[init.name] = list(init.dims)
    return out


class _Constants:
    """Values of tensors that are initializers or Constant-node outputs in one graph."""

    def __init__(self, graph: onnx.GraphProto):
        graph_inputs = {v.name for v in graph.input}
        # An initializer that is also a graph input can be overridden at run time: not a constant.
        self.initializers = {t.name: t for t in graph.initializer if t.name not in graph_inputs}
        self.constant_nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.output}

    def value(self, name: str) -> np.ndarray | None:
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.constant_nodes.get(name)
        if node is None:
            return None
        for attr in node.attribute:
            if attr.name == "value":
                return numpy_helper.to_array(attr.t)
            if attr.name == "value_int":
                return np.array(attr.i, dtype=np.int64)
            if attr.name == "value_ints":
                return np.array(list(attr.ints), dtype=np.int64)
        return None


def _slice_params(node: onnx.NodeProto, consts: _Constants, opset: int) -> tuple | None:
    """(starts, ends, axes, steps) as int lists when all are constants, else None."""
    if opset < 10:  # Slice-1: parameters are attributes, steps are always 1
        attrs = {a.name: list(a.ints) for a in node.attribute}
        if "starts" not in attrs or "ends" not in attrs:
            return None
        starts, ends = attrs["starts"], attrs["ends"]
        axes = attrs.get("axes", list(range(len(starts))))
        return starts, ends, axes, [1] * len(starts)
    values = []
    for idx in range(1, 5):
        name = node.input[idx] if idx < len(node.input) else ""
        if not name:
            values.append(None)
            continue
        v = consts.value(name)
        if v is None:
            return None
        values.append([int(x) for x in np.asarray(v).reshape(-1)])
    starts, ends, axes, steps = values
    if starts is None or ends is None:
        return None
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    return starts, ends, axes, steps


def _noop_slice_reason(node, consts, shapes, opset) -> str | None:
    """Why this Slice returns its input unchanged, or None when that cannot be proven."""
    params = _slice_params(node, consts, opset)
    if params is None:
        return None
    starts, ends, axes, steps = params
    shape = shapes.get(node.input[0])
    if shape is None or not (len(starts) == len(ends) == len(axes) == len(steps)):
        return None
    parts = []
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if axis < 0:
            axis += len(shape)
        if not 0 <= axis < len(shape) or step != 1:
            return None
        dim = shape[axis]
        if end >= _INT64_MAX:  # "to the end", whatever the size
            parts.append(f"axis {axis}: {start}:end")
            if start == 0 or (dim is not None and start <= -dim):
                continue
            return None
        if dim is None:
            return None
        lo = start + dim if start < 0 else start
        hi = end + dim if end < 0 else end
        if lo > 0 or hi < dim:
            return None
        parts.append(f"axis {axis}: {start}:{end} of {dim}")
    return "selects everything (" + "; ".join(parts) + ")"


def remove_noop_slices(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[dict[str, Any]]]:
    """A copy of ``model`` without no-op Slice and Identity nodes in its main graph.

    Returns the new model and one ``{"op", "name", "reason"}`` per removed Slice or Identity. The
    Constant nodes and initializers that only fed them are dropped as well, without a list entry
    (compare node counts to see them). Nothing else changes; run ``onnx.checker`` on the result.
    """
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    model = model_copy
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    consts = _Constants(graph)
    shapes = _shapes(model)
    graph_inputs = {v.name for v in graph.input}
    graph_outputs = {o.name for o in graph.output}
    producers = {o: n for n in graph.node for o in n.output}

    removed: list[dict[str, Any]] = []
    candidate_inputs: set[str] = set()
    for node in list(graph.node):
        if node.op_type == "Slice" and node.domain in ("", "ai.onnx"):
            reason = _noop_slice_reason(node, consts, shapes, opset)
        elif node.op_type == "Identity" and node.domain in ("", "ai.onnx"):
            reason = "identity"
        else:
            continue
        if reason is None or not node.input or not node.input[0]:
            continue
        src, dst = node.input[0], node.output[0]
        if dst in graph_outputs:
            # The output name must survive: let the producer write it directly, if there is one and
            # its own output is not needed under the old name (a graph output or a graph input).
            producer = producers.get(src)
            if (node.op_type == "Identity" or producer is None or src in graph_outputs
                    or src in graph_inputs):
                continue
            for i, name in enumerate(producer.output):
                if name == src:
                    producer.output[i] = dst
            _rename_input(graph, src, dst)
            producers[dst] = producer
            _drop_value_info(graph, src)
        else:
            if node.op_type == "Identity" and src in graph_inputs:
                continue  # keep Identities that touch the graph's inputs or outputs
            _rename_input(graph, dst, src)
            _drop_value_info(graph, dst)
        graph.node.remove(node)
        candidate_inputs.update(i for i in node.input[1:] if i)
        removed.append({"op": node.op_type, "name": node.name or dst, "reason": reason})

    # Constants and initializers that only fed the removed nodes.
    used = _used_names(graph)
    for node in list(graph.node):
        out = node.output[0] if node.output else ""
        if node.op_type == "Constant" and out in candidate_inputs and out not in used:
            graph.node.remove(node)
            _drop_value_info(graph, out)
    for init in list(graph.initializer):
        if init.name in candidate_inputs and init.name not in used:
            graph.initializer.remove(init)
            for vi in [v for v in graph.input if v.name == init.name]:
                graph.input.remove(vi)
    return model, removed


def _drop_value_info(graph: onnx.GraphProto, name: str) -> None:
    for vi in [v for v in graph.value_info if v.name == name]:
        graph.value_info.remove(vi)
