"""GhostNet 1.0x against the facts: checkpoint layout, parameter count, golden logits; the registry."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jobs import errors, models
from jobs.models import ghostnet


@pytest.fixture(scope="module")
def manifest(facts_dir):
    return json.loads((facts_dir / "ghostnet_state_dict.json").read_text())


@pytest.fixture(scope="module")
def model():
    return ghostnet.GhostNet().eval()


def test_state_dict_matches_checkpoint_manifest(model, manifest):
    state = model.state_dict()
    entries = manifest["entries"]
    assert len(state) == len(entries) == 512
    assert list(state) == [e["key"] for e in entries]
    for (key, tensor), entry in zip(state.items(), entries):
        assert list(tensor.shape) == entry["shape"], key
        assert str(tensor.dtype).removeprefix("torch.") == entry["dtype"], key


def test_key_list_hash(model, manifest):
    digest = hashlib.sha256("\n".join(model.state_dict()).encode()).hexdigest()
    assert digest == manifest["key_list_sha256"]


def test_parameter_count(model, manifest):
    count = sum(p.numel() for p in model.parameters())
    assert count == 5_182_508 == manifest["counts"]["total_parameters"]


def test_squeeze_excite_widths(model, manifest):
    modules = dict(model.named_modules())
    for name, (channels, reduced) in manifest["se_reduced_channels"].items():
        se = modules[name]
        assert (se.conv_reduce.in_channels, se.conv_reduce.out_channels) == (channels, reduced)


def test_stage_output_shapes(model, manifest):
    x = torch.zeros(4, 3, 224, 224)
    with torch.no_grad():
        x = model.bn1(model.conv_stem(x)).relu()
        for i, block in enumerate(model.blocks):
            x = block(x)
            assert list(x.shape) == manifest["stage_output_shapes_224"][f"blocks.{i}"]


@pytest.mark.parametrize("value, divisor, expected", [(18.0, 4, 20), (16.0, 4, 16), (1.0, 4, 4), (30.0, 8, 32),
                                                      (240.0, 4, 240), (10.0, 8, 16)])
def test_make_divisible(value, divisor, expected):
    assert ghostnet.make_divisible(value, divisor) == expected


def test_golden_logits(golden, facts_dir):
    net = ghostnet.GhostNet().eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in golden.make_state_dict().items()}, strict=True)
    with torch.no_grad():
        logits = net(torch.from_numpy(golden.make_input())).numpy()
    expected = np.load(facts_dir / "ghostnet_golden_logits.npy")
    assert logits.shape == expected.shape == (2, 1000)
    assert np.max(np.abs(logits - expected)) < 1e-4 * np.max(np.abs(expected))
    assert list(logits.argmax(1)) == list(expected.argmax(1))


def test_dropout_only_in_training():
    net = ghostnet.GhostNet()
    net.load_state_dict(ghostnet.deterministic_state_dict(3))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    net.train()
    torch.manual_seed(0)
    with torch.no_grad():
        a = net(x)
        b = net(x)
    assert not torch.equal(a, b)


def test_deterministic_state_dict(model):
    a = ghostnet.deterministic_state_dict(5)
    b = ghostnet.deterministic_state_dict(5)
    c = ghostnet.deterministic_state_dict(6)
    assert list(a) == list(model.state_dict())
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv_stem.weight"], c["conv_stem.weight"])
    assert a["bn1.num_batches_tracked"].dtype == torch.int64
    assert float(a["bn1.running_var"].min()) >= 0.5
    ghostnet.GhostNet().load_state_dict(a, strict=True)


def test_registry_entry():
    info = models.get("ghostnet_1.0x")
    assert info.name == "ghostnet_1.0x"
    assert info.checksum == "md5:f7241350b4486bf00accbf9c3a192331"
    assert info.weights_uri.endswith("/ghostnet_pytorch/models/state_dict_73.98.pth")
    assert (info.num_classes, info.input_size, info.resize_short, info.crop) == (1000, 224, 256, 224)
    assert (info.published_top1, info.published_top5) == (73.98, 91.46)
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
    assert (info.interpolation, info.label_offset) == ("bilinear", 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "other"


def test_registry_names_match_keys():
    for name, info in models.REGISTRY.items():
        assert info.name == name


def test_registry_build():
    net = models.build(models.get("ghostnet_1.0x"))
    assert isinstance(net, ghostnet.GhostNet)
    assert net.classifier.out_features == 1000


def test_registry_unknown_name():
    with pytest.raises(errors.BadInput) as e:
        models.get("resnet50")
    message = str(e.value)
    assert "resnet50" in message and "ghostnet_1.0x" in message
    assert "\n" not in message


def test_registry_bad_factory_is_a_bug_not_bad_input():
    # a wrong entry in ghostbench's own registry must fail loudly (a traceback), never as the user's fault
    info = dataclasses.replace(models.get("ghostnet_1.0x"), factory="jobs.models.nonexistent:make")
    with pytest.raises(ModuleNotFoundError, match="nonexistent"):
        models.build(info)
    info = dataclasses.replace(info, factory="jobs.models.ghostnet:no_such_function")
    with pytest.raises(AttributeError, match="no_such_function"):
        models.build(info)
