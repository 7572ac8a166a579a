"""``ghostbench demo``: the whole pipeline on this machine, offline, in a couple of minutes.

It generates a small labelled image set, takes the official weights when their address answers
(checksum verified) and deterministic weights otherwise (their classifier standardized over the images,
so that the reference's top-1 spreads over many classes), labels the images with the PyTorch
reference model's own top-1 on the seed's preprocessing, and runs a sweep on ONNX Runtime CPU
for float32 and uint8 input. Accuracy is therefore agreement with the reference model, and the
demo passes when top-1 agreement is at least 99% for both input modes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import pathlib
import sys
import urllib.request

from controller import launch, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import errors, models
from jobs import store as store_mod
from jobs.artifacts import commit
from jobs.devices import cpu
from jobs.results import metrics

log = logging.getLogger("ghostbench.demo")
MODEL = "ghostnet_1.0x"
WEIGHTS_SEED = 0
IMAGES_SEED = 0
INPUTS_VERSION = 2  # 2: deterministic weights whose top-1 spreads over many classes (1: nearly all one class)
MIN_MARGIN = 1e-3  # top-1 minus top-2 logit / max |logit| of a demo image: 10x the export's parity tolerance
MAX_REDRAWS = 5


def official_weights_reachable(info: models.ModelInfo, timeout_s: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(info.weights_uri, method="HEAD"), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _batch(images_dir: pathlib.Path, names: list[str], info: models.ModelInfo):
    """The images as the seed preprocesses them (float32 NCHW), as the reference model sees them."""
    import numpy as np

    from jobs.data import imaging, recipe

    r = recipe.resolve(info)
    return np.stack([imaging.normalize(imaging.resize_crop(imaging.decode((images_dir / n).read_bytes(), n),
                                                           r.resize_short, r.crop), r.mean, r.std)
                     for n in names])


def _reference_labels(weights_path: pathlib.Path, images_dir: pathlib.Path, names: list[str],
                      info: models.ModelInfo) -> list[int]:
    """Top-1 of the PyTorch model on the seed-faithful preprocessing: the labels agreement is measured with."""
    import torch

    from jobs.models import weights

    net = models.build(info)
    weights.apply_state_dict(net, weights.load_state_dict(weights_path), str(weights_path))
    net.eval()
    with torch.inference_mode():
        logits = net(torch.from_numpy(_batch(images_dir, names, info))).numpy()
    return _labels(logits)


def _labels(logits) -> list[int]:
    """Each image's top-1 by the rule its predictions are ranked by (``metrics.top1``: ties to the lower class);
    ``GhostbenchError`` when a logit is NaN or infinite: no labels to agree with (``np.argmax`` takes a NaN for the
    best)."""
    bad = metrics.nonfinite(logits)
    if bad is not None:
        raise errors.GhostbenchError(
            f"the reference model's logits hold {bad.nan} NaN and {bad.posinf + bad.neginf} infinite value(s) for "
            f"{len(bad.rows)} image(s): no labels to measure agreement with")
    return [int(i) for i in metrics.top1(logits)]


def _features_and_logits(net, images_dir: pathlib.Path, names: list[str], info: models.ModelInfo):
    """(what enters the classifier, the logits) of the reference model on the images."""
    import torch

    head = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen = []
    hook = head.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        with torch.inference_mode():
            logits = net(torch.from_numpy(_batch(images_dir, names, info))).numpy()
    finally:
        hook.remove()
    return seen[0].numpy(), logits


def _margins(logits):
    """Top-1 minus top-2 logit, as a share of the image's largest |logit|."""
    import numpy as np

    top2 = np.sort(logits, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) / np.maximum(np.abs(logits).max(axis=1), 1e-12)


def _deterministic_weights(weights_path: pathlib.Path, images_dir: pathlib.Path, names: list[str],
                           info: models.ModelInfo) -> tuple[str, list[int]]:
    """Deterministic weights whose top-1 spreads over many classes on these images, and those top-1s.

    Untrained weights give nearly every image the same class (48 images: 2 classes), so 100% agreement would
    say little. The classifier's input is standardized over the demo images, folded into its weight and bias
    (like a BatchNorm): its top-1 then follows each image's own features (48 images: about 38 classes). An image
    whose top two logits are too close to call (``MIN_MARGIN``) is redrawn, so that agreement does not hinge on
    rounding. Returns the weights' "sha256:HEX" (written to ``weights_path``) and the labels."""
    import numpy as np
    import torch

    from jobs.tools import fake_imagenet

    net = models.build(info)
    net.load_state_dict(models.demo_state_dict(info, WEIGHTS_SEED))
    net.eval()
    head = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    features, _ = _features_and_logits(net, images_dir, names, info)
    mean, std = features.mean(axis=0), features.std(axis=0)
    std = np.maximum(std, 0.1 * std.mean())  # a feature (nearly) constant over the images is not blown up
    with torch.no_grad():
        scaled = head.weight / torch.from_numpy(std)
        head.weight.copy_(scaled)
        head.bias.sub_(scaled @ torch.from_numpy(mean))
        logits = head(torch.from_numpy(features)).numpy()  # what the whole network gives now, without rerunning it
    for attempt in range(1, MAX_REDRAWS + 1):
        close = [i for i in np.flatnonzero(_margins(logits) < MIN_MARGIN)]
        if not close:
            break
        redrawn = [fake_imagenet.make_image(images_dir, int(i), IMAGES_SEED, attempt) for i in close]
        logits[close] = _features_and_logits(net, images_dir, redrawn, info)[1]
    torch.save(net.state_dict(), weights_path)
    return "sha256:" + commit.file_digest(weights_path), _labels(logits)


def prepare_inputs(store: store_mod.Store, count: int, offline: bool) -> dict[str, str]:
    """Images, labels and weights in the store, made once and reused (committed like a stage output)."""
    from jobs.models import weights
    from jobs.tools import fake_imagenet

    info = models.get(MODEL)
    official = not offline and official_weights_reachable(info)
    source = "official" if official else f"deterministic-seed{WEIGHTS_SEED}"
    fingerprint = hashlib.sha256(json.dumps([count, IMAGES_SEED, MODEL, source, INPUTS_VERSION]).encode()
                                 ).hexdigest()[:12]
    where = store.child(f"inputs/demo-{fingerprint}")
    manifest = commit.read_manifest(where)
    if manifest is None:
        log.info("demo: making %d images and labels (%s weights) in %s", count, source, where.uri)
        with commit.Output(where, "demo-inputs", {"count": count, "weights": source, "version": INPUTS_VERSION}
                           ) as out:
            images_dir = out.dir / "images"
            names = fake_imagenet.make_image_set(images_dir, count=count, seed=IMAGES_SEED)
            if official:
                weights_path = weights.fetch(info.weights_uri, info.checksum, out.dir / "download")
                checksum, weights_uri = info.checksum, info.weights_uri
                labels = _reference_labels(weights_path, images_dir, names, info)
            else:
                weights_path = out.dir / "weights.pth"
                checksum, labels = _deterministic_weights(weights_path, images_dir, names, info)
                weights_uri = where.uri + "/weights.pth"
            fake_imagenet.write_labels(out.dir, names, labels)
            if official:
                weights_path.unlink()
            out.record.update({"weights_uri": weights_uri, "checksum": checksum, "official": official,
                               "images": len(names), "distinct_labels": len(set(labels))})
        manifest = commit.read_manifest(where)
        assert manifest is not None
    rec = manifest["record"]
    return {"images": where.uri + "/images", "labels": where.uri + "/" + fake_imagenet.LABELS_FILE,
            "weights": rec["weights_uri"], "checksum": rec["checksum"], "official": rec["official"],
            "distinct_labels": rec.get("distinct_labels")}


def demo_threads(cpus: int) -> int:
    """ONNX Runtime's operator threads in the demo: one fewer than the CPUs this process may use, at least one.

    A thread pool as wide as a shared virtual machine stops at every operator's barrier whenever the host takes
    one of its vCPUs away, and runs stay in that mode for seconds to minutes: on a 2-vCPU VM two threads gave
    88 images/s in one demo and 191 in the next at batch 1, and a compare of unchanged code exited 5; one thread
    moved within about 10% (docs/performance.md, "Why two identical runs differed"). A spare CPU lets the
    scheduler move the timed thread off a vCPU the host took. Sweeps keep ONNX Runtime's default (every CPU);
    ``backend_options: {intra_op_threads: N}`` chooses."""
    return max(1, cpus - 1)


def demo_spec(inputs: dict[str, str], store_uri: str, batch_sizes: list[int], threads: int) -> spec_mod.SweepSpec:
    doc = {
        "name": "demo",
        "store": store_uri,
        "model": {"name": MODEL, "weights": inputs["weights"], "checksum": inputs["checksum"]},
        "dataset": {"images": inputs["images"], "labels": inputs["labels"]},
        "targets": [
            {"name": f"ort-cpu-{mode}", "backend": "onnxruntime", "device": "cpu", "engine": "onnxruntime",
             "input_mode": mode, "batch_sizes": batch_sizes,
             "backend_options": {"intra_op_threads": threads}}
            for mode in ("float32", "uint8")
        ],
        # The labels are the reference model's own predictions: 100% is perfect agreement.
        "reference": {"top1": 100.0, "top5": 100.0, "kind": "agreement", "gate": 1.0},
        # Short on purpose (the whole demo in under a minute on 2 cores, one operator thread): 5 repetitions of
        # 0.3 s, so the report marks its runs short, and compares of demos say inconclusive where 1.5 s of timing
        # cannot tell.
        "timing": {"warmup": 1, "min_batches": 2, "min_seconds": 0.3, "repetitions": 5},
    }
    return spec_mod.parse(doc, "demo")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        if not batch_sizes or min(batch_sizes) < 1:
            raise ValueError
    except ValueError as e:
        raise errors.BadInput(f"--batch-sizes: expected comma-separated integers >= 1, got {args.batch_sizes!r}") \
            from e
    if args.images < 1:
        raise errors.BadInput(f"--images: expected an integer >= 1, got {args.images}")
    store = store_mod.open_store(args.store or spec_mod.DEFAULT_STORE)
    inputs = prepare_inputs(store, args.images, args.offline)
    print("demo: weights: " + ("the official checkpoint (checksum verified)" if inputs["official"] else
                               f"deterministic (seed {WEIGHTS_SEED}), not the official checkpoint, which was "
                               "not reachable"), file=sys.stderr)
    print("demo: accuracy below is top-1/top-5 agreement with the PyTorch reference model, not ImageNet accuracy",
          file=sys.stderr)
    budget = cpu.available_cpus()
    threads = demo_threads(budget.count)
    print(f"demo: ONNX Runtime on {threads} operator thread(s) of the {budget.count} CPU(s) this process may use "
          f"(counted from {budget.source}): one CPU is left to the rest of the machine, so that a second demo's "
          "figures can be compared with this one's (README, 'The demo')", file=sys.stderr)
    spec = demo_spec(inputs, store.uri, batch_sizes, threads)
    plan = plan_mod.make_plan(spec, store.uri)
    code = launch.execute(spec, plan, store, "local", args.jobs)
    if code not in (errors.EXIT_OK, errors.EXIT_GATE_FAILED):
        return code
    sys.stdout.write(store.read_text(f"{runner.sweep_dir(spec.name)}/report.md"))
    if code == errors.EXIT_GATE_FAILED:
        print("demo: FAILED: top-1 agreement below 99% for at least one run", file=sys.stderr)
        return code
    print(f"demo: passed; report in {store.uri}/{runner.sweep_dir(spec.name)}/", file=sys.stderr)
    return errors.EXIT_OK
