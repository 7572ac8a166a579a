"""A stand-in for CANN's ``atc`` with the seed's arguments: writes an ONNX model where the ``.om`` goes.

Tests put an executable named ``atc`` on PATH that runs ``tests.support.fake_atc`` in a MODE with ATC's ARGS
(see ``install``). Modes:

- ``ok``: does what ATC does to the model's interface, in ONNX, so that ``tests.support.fake_aclruntime``
  can run the result: the batch dimension fixed to N (or -1 with ``--dynamic_batch_size``), and with
  ``--insert_op_conf`` the static AIPP of the config file in front of the model (uint8 NHWC RGB in,
  ``(pixel - mean_chn - min_chn) * var_reci_chn`` per channel). Then writes ``<--output>.om``.
- ``fail``: prints an ATC-like error and exits 1.
- ``hang``: never finishes (the stage's timeout must kill it).
- ``no-output``: exits 0 without writing the ``.om``.

Every run appends its argument list (as JSON, one line) to ``$FAKE_ATC_RECORD`` and writes its pid
to ``$FAKE_ATC_PIDFILE`` when those are set (test doubles only).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import stat
import sys
import time

from tests.support.paths import REPO_ROOT


def install(bin_dir: pathlib.Path, mode: str = "ok") -> pathlib.Path:
    """Write an executable ``atc`` into ``bin_dir`` that runs this module in ``mode``; returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "atc"
    path.write_text(f"#!{sys.executable}\n"
                    "import sys\n"
                    f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
                    "from tests.support import fake_atc\n"
                    f"sys.exit(fake_atc.main([{mode!r}, *sys.argv[1:]]))\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def parse_flags(argv: list[str]) -> dict[str, str]:
    flags = {}
    for a in argv:
        m = re.fullmatch(r"--([A-Za-z_]+)=(.*)", a)
        if not m:
            raise SystemExit(f"fake atc: unexpected argument {a!r} (ATC takes --name=value)")
        flags[m.group(1)] = m.group(2)
    return flags


def parse_aipp(text: str) -> dict[str, str]:
    body = re.search(r"aipp_op\s*\{(.*)\}", text, re.DOTALL)
    if not body:
        raise SystemExit("fake atc: no aipp_op { ... } in the AIPP config")
    values = {}
    for line in body.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(":")
            values[key.strip()] = value.strip()
    return values


def build(flags: dict[str, str]) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(flags["model"])
    name, _, dims = flags["input_shape"].partition(":")
    n, c, h, w = (int(d) for d in dims.split(","))
    dynamic = flags.get("dynamic_batch_size")
    graph = model.graph
    inp = next(i for i in graph.input if i.name == name)
    meta = {"fake_atc": "1", "soc_version": flags["soc_version"], "input_format": "NCHW"}
    if dynamic:
        meta["dynamic_batch_sizes"] = dynamic
    if "insert_op_conf" in flags:
        aipp = parse_aipp(pathlib.Path(flags["insert_op_conf"]).read_text())
        assert aipp["input_format"] == "RGB888_U8" and aipp["aipp_mode"] == "static", aipp
        assert (int(aipp["src_image_size_w"]), int(aipp["src_image_size_h"])) == (w, h), aipp
        sub = np.array([float(aipp.get(f"mean_chn_{i}", 0)) + float(aipp.get(f"min_chn_{i}", 0)) for i in range(c)],
                       dtype=np.float32).reshape(1, c, 1, 1)
        mul = np.array([float(aipp.get(f"var_reci_chn_{i}", 1)) for i in range(c)],
                       dtype=np.float32).reshape(1, c, 1, 1)
        inner = name + "_aipp"
        for node in graph.node:
            node.input[:] = [inner if x == name else x for x in node.input]
        pre = [helper.make_node("Cast", [name], [name + "_f"], to=TensorProto.FLOAT),
               helper.make_node("Transpose", [name + "_f"], [name + "_nchw"], perm=[0, 3, 1, 2]),
               helper.make_node("Sub", [name + "_nchw", "aipp_sub"], [name + "_centred"]),
               helper.make_node("Mul", [name + "_centred", "aipp_mul"], [inner])]
        graph.initializer.extend([numpy_helper.from_array(sub, "aipp_sub"), numpy_helper.from_array(mul, "aipp_mul")])
        old_nodes = list(graph.node)
        del graph.node[:]
        graph.node.extend(pre + old_nodes)
        inp.type.tensor_type.elem_type = TensorProto.UINT8
        shape = [n, h, w, c]
        meta["input_format"] = "NHWC"
    else:
        shape = [n, c, h, w]
    dims_proto = inp.type.tensor_type.shape.dim
    del dims_proto[:]
    for d in shape:
        dim = dims_proto.add()
        if d < 0:
            dim.dim_param = "batch"
        else:
            dim.dim_value = d
    for out in graph.output:
        first = out.type.tensor_type.shape.dim[0]
        first.Clear()
        if n < 0:
            first.dim_param = "batch"
        else:
            first.dim_value = n
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(model)
    onnx.save(model, flags["output"] + ".om")


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
    pidfile = os.environ.get("FAKE_ATC_PIDFILE")
    if pidfile:
        pathlib.Path(pidfile).write_text(str(os.getpid()))
    record = os.environ.get("FAKE_ATC_RECORD")
    if record:
        with open(record, "a") as f:
            f.write(json.dumps(args) + "\n")
    flags = parse_flags(args)
    print(f"ATC start working now, please wait for a moment. (fake atc, mode {mode})", flush=True)
    if mode == "fail":
        print("ATC run failed, Please check the detail log, Try 'atc --help' for more information", flush=True)
        print("E19010: No parser is registered for Op [fake_op].", flush=True)
        return 1
    if mode == "hang":
        while True:  # the stage under test must kill this process at its timeout
            time.sleep(60)
    if mode == "no-output":
        print("ATC run success, welcome to the next use.", flush=True)
        return 0
    build(flags)
    print("ATC run success, welcome to the next use.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
