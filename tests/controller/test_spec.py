import pytest

from controller import spec

GOOD = """\
name: seed-310p
model: {name: ghostnet_1.0x}
dataset: {images: /data/val, labels: /data/val_label.txt, shards: 4}
targets:
  - {name: ort-cpu, batch_sizes: [1, 8]}
"""


def write(tmp_path, text, name="sweep.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_spec_loads_with_defaults(tmp_path):
    s = spec.load(write(tmp_path, GOOD))
    assert s.name == "seed-310p"
    assert s.dataset.shards == 4
    assert s.targets[0].batch_sizes == (1, 8)
    assert s.targets[0].input_mode == "float32"
    assert s.store == spec.DEFAULT_STORE
    assert s.reference.gate == 1.0


def test_default_batch_sizes_and_name_from_file(tmp_path):
    s = spec.load(write(tmp_path, "dataset: {images: a, labels: b}\ntargets: [{name: t}]\n", "My Sweep.yaml"))
    assert s.targets[0].batch_sizes == (1, 4, 8, 16, 32)
    assert s.name == "my-sweep"
    assert s.dataset.images == str(tmp_path / "a")  # relative to the sweep file


@pytest.mark.parametrize("text, message", [
    ("dataset: {images: a, labels: b}\ntargets: [{name: t, batch_size: [1]}]\n",
     "targets[0].batch_size: unknown field (did you mean 'batch_sizes'?)"),
    ("dataset: {images: a, labels: b}\ntargets: [{name: t, batch_sizes: []}]\n",
     "targets[0].batch_sizes: expected a non-empty list of integers >= 1, got []"),
    ("dataset: {images: a, labels: b}\ntargets: [{name: t, batch_sizes: [1, two]}]\n",
     "targets[0].batch_sizes: expected a non-empty list of integers >= 1, got [1, 'two']"),
    ("dataset: {images: a, labels: b, limit: '10'}\ntargets: [{name: t}]\n",
     "dataset.limit: expected an integer >= 1 or null, got '10'"),
    ("dataset: {images: 'ftp://x/y', labels: b}\ntargets: [{name: t}]\n",
     "dataset.images: expected a path or a URI with scheme file://, s3://, got 'ftp://x/y'"),
    ("dataset: {images: a, labels: b}\ntargets: [{name: t, input_mode: int8}]\n",
     "targets[0].input_mode: expected one of float32, uint8, got 'int8'"),
    ("dataset: {images: a, labels: b}\ntargets: []\n", "targets: expected a non-empty list of targets, got []"),
    # a CPU run on an NPU's pod (a card's accelerator set by `card:` the same way) would report NPU figures
    ("dataset: {images: a, labels: b}\ntargets: [{name: t, device: cpu, accelerator: Ascend310}]\n",
     "targets[0].accelerator: expected an accelerator the target's device runs on (onnxruntime device cpu is the "
     "CPU; Ascend310 is an NPU"),
    ("dataset: {images: a, labels: b}\ntargets: [{name: t, device: 'cuda:0', accelerator: Ascend310P3}]\n",
     "targets[0].accelerator: expected an accelerator the target's device runs on (onnxruntime device cuda:0 is a "
     "GPU; Ascend310P3 is an NPU"),
    ("dataset: {images: a, labels: b, pipeline: cv2}\ntargets: [{name: t}]\n",
     "dataset.pipeline: expected one of seed, opencv, got 'cv2'"),
    ("dataset: {images: a, labels: b, allow_missing: 'yes'}\ntargets: [{name: t}]\n",
     "dataset.allow_missing: expected true or false, got 'yes'"),
    ("dataset: {images: a, labels: b, max_pixels: 100000000}\ntargets: [{name: t}]\n",
     "dataset.max_pixels: expected an integer from 1 to 89478485 or null, got 100000000"),
    ("targets: [{name: t}]\n", "dataset: required field is missing"),
    ("dataset: {images: a, labels: b}\ntargets: [{name: t}, {name: t}]\n",
     "targets[].name: expected unique target names, got 't'"),
    ("model: {weights: /w.pth}\ndataset: {images: a, labels: b}\ntargets: [{name: t}]\n",
     "model.checksum: required when model.weights is given"),
    ("model: {weights: /w.pth, checksum: md5:123}\ndataset: {images: a, labels: b}\ntargets: [{name: t}]\n",
     "model.checksum: expected md5:<32 hex digits> or sha256:<64 hex digits>, got 'md5:123'"),
    ("model: {name: resnet}\ndataset: {images: a, labels: b}\ntargets: [{name: t}]\n",
     "model.name: model 'resnet' is not known"),
    ("dataset: {images: a, labels: b}\ntargets: [{name: t, backend: tensorflow}]\n",
     "targets[0].backend: expected one of acl, null, onnxruntime, got 'tensorflow'"),
    ("dataset: {images: a, labels: b}\ntargets: [{name: t}]\nstore: s3://\n",
     "store: expected s3://bucket/prefix with a bucket name, got 's3://'"),
    ("dataset: {images: a, labels: b\n", "sweep.yaml:2: not valid YAML"),
    ("- just\n- a list\n", "(top level): expected a mapping"),
])
def test_malformed_specs_give_one_line_naming_the_field(tmp_path, text, message):
    with pytest.raises(spec.SpecError) as e:
        spec.load(write(tmp_path, text))
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "sweep.yaml"))
    assert message in text


def test_missing_file(tmp_path):
    with pytest.raises(spec.SpecError, match="no such sweep file"):
        spec.load(tmp_path / "nope.yaml")
