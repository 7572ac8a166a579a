"""Stage convert: model.onnx + engine target + batch size -> an engine for that target.

Targets come from ``jobs.converters``: 'onnxruntime' (an offline-optimized model with a fixed
batch size) and 'atc' (an Ascend .om built by ATC, with AIPP for uint8 input; see docs/ascend.md).

    python -m jobs.stages.convert --model EXPORT_URI --target onnxruntime --batch-size 8 --out URI
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence

from jobs import converters, params
from jobs import store as store_mod
from jobs.artifacts import commit, records
from jobs.stages import cli

log = logging.getLogger("ghostbench.convert")


def run(args: params.ConvertParams, out: store_mod.Store) -> None:
    convert_fn = converters.REGISTRY.load(args.target)
    options = dict(args.options or {})
    model_store, manifest = commit.require_committed(args.model, "--model")
    recorded = {**args.to_dict(), "model_sha256": commit.file_entry(manifest, records.MODEL_FILE)["sha256"]}
    with commit.local_copy(model_store, manifest, records.MODEL_FILE) as model_path:
        with commit.Output(out, "convert", recorded, args.upstream()) as output:
            log.info("convert: %s -> %s engine, batch %d", args.model, args.target, args.batch_size)
            built = convert_fn(model_path, output.dir, args.batch_size, options, args.precision)
            engine = dataclasses.replace(built, details={"precision": args.precision, **built.details,
                                                         "model": args.model, "model_sha256": recorded["model_sha256"]})
            (output.dir / records.ENGINE_RECORD).write_text(engine.to_json())
            output.record.update(engine.to_dict())


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(params.ConvertParams, run, argv)


if __name__ == "__main__":
    sys.exit(main())
