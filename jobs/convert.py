"""Stage convert: model.onnx + target + batch size -> an engine for that target.

Targets come from ``jobs.converters``: 'onnxruntime' (an offline-optimized model with a fixed
batch size) and 'atc' (an Ascend .om built by ATC, with AIPP for uint8 input; see docs/ascend.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from jobs import commit, converters, errors, stage
from jobs import store as store_mod

log = logging.getLogger("ghostbench.convert")
MODEL_FILE = "model.onnx"


def build_parser() -> argparse.ArgumentParser:
    p = stage.parser("convert", __doc__.splitlines()[0])
    p.add_argument("--model", required=True, metavar="URI", help="committed output of the export stage")
    p.add_argument("--target", default="onnxruntime", help=f"engine target: {', '.join(converters.names())}")
    p.add_argument("--batch-size", type=int, required=True, help="batch size the engine is built for")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="target option (repeatable), e.g. offline_level=all; values parse as JSON")
    return p


def run(args: argparse.Namespace, out: store_mod.Store) -> None:
    if args.batch_size < 1:
        raise errors.BadInput(f"--batch-size: expected an integer >= 1, got {args.batch_size}")
    convert_fn = converters.get(args.target)
    options = stage.parse_options(args.option)
    model_store, manifest = commit.require_committed(args.model, "--model")
    params = {"model": args.model, "model_sha256": commit.file_entry(manifest, MODEL_FILE)["sha256"],
              "target": args.target, "batch_size": args.batch_size, "options": options}
    with commit.local_copy(model_store, manifest, MODEL_FILE) as model_path:
        with commit.Output(out, "convert", params) as output:
            log.info("convert: %s -> %s engine, batch %d", args.model, args.target, args.batch_size)
            record = convert_fn(model_path, output.dir, args.batch_size, options)
            record["model"] = args.model
            record["model_sha256"] = params["model_sha256"]
            (output.dir / "engine.json").write_text(json.dumps(record, indent=1) + "\n")
            output.record.update(record)


def main(argv=None) -> int:
    return stage.main("convert", build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
