"""A target on several devices of one node (``devices``, ``divide_input``, ``card``): checked at plan time against
the catalogue, the card and the backend, each error naming its field; the plan's infer step carries them and its
command runs them."""

from __future__ import annotations

import re

import pytest

from controller import plan as plan_mod
from controller import spec as spec_mod
from jobs import params

BASE = {"dataset": {"images": "imgs", "labels": "imgs/val_label.txt"}}


def _spec(**target):
    return spec_mod.parse({**BASE, "targets": [{"name": "t", "batch_sizes": [4], **target}]}, "sweep.yaml")


def test_a_card_of_four_chips_planned_as_one_infer_step_on_all_of_them():
    spec = _spec(backend="null", devices=["none:0", "none:1"], divide_input=True)
    (t,) = spec.targets
    assert (t.devices, t.device, t.divide_input) == (("none:0", "none:1"), "none:0", True)
    infer = [s for s in plan_mod.make_plan(spec).steps if s.stage == "infer"][0]
    assert infer.params.devices == ("none:0", "none:1") and infer.params.divide_input
    cmd = infer.command()
    assert cmd[cmd.index("--devices") + 1] == "none:0" and "--divide-input" in cmd
    again = params.InferParams.from_args(params.InferParams.build_parser().parse_args(cmd[2:]))
    assert again.devices == infer.params.devices
    assert spec_mod.parse(spec.to_dict(), "spec.yaml").targets == spec.targets  # the resolved spec plans again


def test_the_card_names_the_accelerator_and_reaches_eval():
    spec = _spec(backend="acl", engine="atc", devices=["npu:0", "npu:1"], card="atlas-300i-duo")
    assert spec.targets[0].accelerator == "Ascend310P3"
    evals = [s for s in plan_mod.make_plan(spec).steps if s.stage == "eval"][0]
    assert evals.params.cards == {"t": "atlas-300i-duo"}


@pytest.mark.parametrize("target, message", [
    ({"backend": "null", "devices": ["none:0"]}, "targets[0].devices: expected a list of at least 2 device names"),
    ({"backend": "null", "devices": "none:0,none:1"}, "targets[0].devices: expected a list of at least 2"),
    ({"backend": "null", "device": "none:3", "devices": ["none:0", "none:1"]},
     "targets[0].device: expected nothing beside devices, or their first (none:0)"),
    ({"backend": "null", "divide_input": True}, "targets[0].divide_input: expected false unless devices lists"),
    ({"backend": "null", "devices": ["none:0", "none:0"]}, "targets[0].devices: expected distinct devices"),
    ({"backend": "onnxruntime", "devices": ["cpu", "cpu:1"]}, "targets[0].devices: expected devices with an index"),
    ({"backend": "onnxruntime", "devices": ["cuda:0", "tensorrt:0"]},
     "targets[0].devices: expected every device through one provider (cuda:N, as 'cuda:0'), got 'tensorrt:0'"),
    ({"backend": "onnxruntime", "devices": ["cuda:1", "cuda:0", "cuda:01"]},
     "targets[0].devices: expected distinct devices, got 'cuda:1' and 'cuda:01', one device"),
    ({"backend": "null", "devices": ["none:0", "none:00"]},
     "targets[0].devices: expected distinct devices, got 'none:0' and 'none:00', one device"),
    ({"backend": "acl", "engine": "atc", "card": "atlas-300i-ultra", "devices": ["npu:0", "npu:1"]},
     "targets[0].card: expected one of atlas-300i, atlas-300i-pro, atlas-300i-duo, nvidia-t4"),
    ({"backend": "acl", "engine": "atc", "card": "atlas-300i-duo", "accelerator": "Ascend310",
      "devices": ["npu:0", "npu:1"]}, "targets[0].accelerator: expected Ascend310P3, the chip of card atlas-300i-duo"),
    ({"backend": "acl", "engine": "atc", "card": "atlas-300i-duo", "devices": ["npu:0", "npu:1", "npu:2"]},
     "targets[0].devices: expected at most 2 devices, the chips of one Atlas 300I Duo"),
    ({"backend": "acl", "engine": "atc", "accelerator": "Ascend310",
      "devices": [f"npu:{i}" for i in range(5)]}, "targets[0].devices: expected at most 4 devices"),
    ({"backend": "acl", "engine": "atc", "accelerator": "Ascend310P3", "devices": ["npu:0", "npu:1"]},
     "at most 1 device, the chips of one Ascend310P3 card (name another card with targets[0].card: atlas-300i-duo)"),
    ({"backend": "acl", "engine": "atc", "card": "atlas-300i-dou", "devices": ["npu:0", "npu:1"]},
     "targets[0].card: expected one of atlas-300i, atlas-300i-pro, atlas-300i-duo, nvidia-t4, got 'atlas-300i-dou' "
     "(did you mean 'atlas-300i-duo'?)"),
    ({"backend": "acl", "engine": "atc", "accelerator": "Ascend910B", "devices": ["npu:0", "npu:1"]},
     "targets[0].devices: expected at most 1 device, the chips of one Ascend910B card (the catalogue has no card "
     "of several), got"),
])
def test_what_is_refused_names_its_field(target, message):
    with pytest.raises(spec_mod.SpecError, match=re.escape(message)):
        _spec(**target)


def test_several_t4_cards_of_a_node_with_their_card_named():
    """docs/ascend.md, "Cards": a GPU is a card of its own; several of a node are several cards, per card each."""
    (t,) = _spec(backend="onnxruntime", card="nvidia-t4", devices=["cuda:0", "cuda:1"]).targets
    assert (t.accelerator, t.devices) == ("nvidia-t4", ("cuda:0", "cuda:1"))


def test_more_devices_than_images_to_divide_is_refused_at_plan(tmp_path, capsys):
    # 3 devices dividing 2 images: one would get none; before, the plan passed and the infer step failed after the
    # exports and preprocessing had run
    import yaml

    from controller import cli
    from jobs.tools import fake_imagenet

    images = tmp_path / "images"
    names = fake_imagenet.make_image_set(images, count=2, seed=1)
    fake_imagenet.write_labels(images, names, [0, 1])
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "s", "store": str(tmp_path / "store"),
        "dataset": {"images": str(images), "labels": str(images / "val_label.txt")},
        "targets": [{"name": "split", "backend": "null", "devices": ["none:0", "none:1", "none:2"],
                     "divide_input": True, "batch_sizes": [1]}]}))
    assert cli.main(["plan", str(sweep)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "targets[0].devices: expected at most 2 devices with divide_input" in err
    assert not (tmp_path / "store").exists()
