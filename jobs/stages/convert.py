"""Stage convert: model.onnx + engine target + batch size -> an engine for that target.

The export's record gives what the engine must know of the model: its normalization (AIPP's constants) and, for
an imported file whose batch axis stayed fixed, the one batch size it runs at (others are refused).
Targets come from ``jobs.converters``: 'onnxruntime' (an offline-optimized model with a fixed
batch size) and 'atc' (an Ascend .om built by ATC, with AIPP for uint8 input; see docs/ascend.md).

    python -m jobs.stages.convert --model EXPORT_URI --target onnxruntime --batch-size 8 --out URI
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence

from jobs import converters, errors, params
from jobs import store as store_mod
from jobs.artifacts import commit, records
from jobs.data import recipe
from jobs.stages import cli

log = logging.getLogger("ghostbench.convert")


def run(args: params.ConvertParams, out: store_mod.Store) -> None:
    convert_fn = converters.REGISTRY.load(args.target)
    options = dict(args.options or {})
    model_store, manifest = commit.require_committed(args.model, "--model")
    recorded = {**args.to_dict(), "model_sha256": commit.file_entry(manifest, records.MODEL_FILE)["sha256"]}
    details = _export_details(model_store, manifest, args.model)
    fixed = details.get("fixed_batch")
    if fixed is not None and (args.batch_size != fixed or options.get("dynamic_batch_sizes")):
        raise errors.BadInput(f"--batch-size {args.batch_size}: model {details['model']!r} runs only at batch size "
                              f"{fixed} (the imported file fixes its batch axis and it could not be made dynamic; "
                              f"{args.model}/{records.EXPORT_RECORD} says why)")
    normalization = (tuple(details.get("mean") or recipe.SEED.mean), tuple(details.get("std") or recipe.SEED.std))
    with commit.local_copy(model_store, manifest, records.MODEL_FILE) as model_path:
        with commit.Output(out, "convert", recorded, args.upstream()) as output:
            log.info("convert: %s -> %s engine, batch %d", args.model, args.target, args.batch_size)
            built = convert_fn(model_path, output.dir, args.batch_size, options, args.precision,
                               normalization=normalization, model_name=details.get("model"))
            engine = dataclasses.replace(built, details={"precision": args.precision, **built.details,
                                                         "model": args.model, "model_sha256": recorded["model_sha256"]})
            (output.dir / records.ENGINE_RECORD).write_text(engine.to_json())
            output.record.update(engine.to_dict())


def _export_details(model_store: store_mod.Store, manifest: dict, uri: str) -> dict:
    """The export record's fields (``model``, ``mean``, ``std``, ``fixed_batch``, ...); empty for an export committed
    without one (a hand-made model folder): the seed's normalization then, any batch size."""
    if not any(f["name"] == records.EXPORT_RECORD for f in manifest["files"]):
        return {}
    record = records.ExportRecord.from_dict(json.loads(commit.read_verified(model_store, manifest,
                                                                            records.EXPORT_RECORD)),
                                            f"{uri}/{records.EXPORT_RECORD}")
    return record.to_dict()


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(params.ConvertParams, run, argv)


if __name__ == "__main__":
    sys.exit(main())
