import dataclasses

from controller import plan, spec

BASE = {
    "name": "s",
    "model": {"name": "ghostnet_1.0x", "weights": "/w.pth", "checksum": "md5:" + "a" * 32},
    "dataset": {"images": "/img", "labels": "/lab.txt", "shards": 2},
    "targets": [{"name": "f32", "batch_sizes": [1, 4]}, {"name": "u8", "input_mode": "uint8", "batch_sizes": [8]}],
}


def make(**changes):
    doc = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in BASE.items()}
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[leaf] = value
    return plan.make_plan(spec.parse(doc, "s.yaml"), "file:///store")


def keys_by_title(p):
    return {s.title: s.key for s in p.steps}


def test_plan_shape_and_dependency_order():
    p = make()
    titles = [s.title for s in p.steps]
    assert titles.count("eval") == 1
    assert sum(t.startswith("export") for t in titles) == 2           # one per input mode
    assert sum(t.startswith("preprocess") for t in titles) == 4       # 2 shards x 2 modes
    assert sum(t.startswith("convert") for t in titles) == 3
    assert sum(t.startswith("infer") for t in titles) == 3
    seen = set()
    for s in p.steps:
        assert set(s.deps) <= seen, s.title
        seen.add(s.key)
    infer = next(s for s in p.steps if s.title == "infer f32 bs4")
    assert infer.exclusive and infer.params.batch_size == 4
    assert infer.command()[infer.command().index("--batch-size") + 1] == "4"
    assert all(s.params.out.startswith("file:///store/") for s in p.steps)


def test_keys_are_stable_across_runs():
    assert keys_by_title(make()) == keys_by_title(make())


def test_adding_a_batch_size_adds_one_convert_one_infer_and_changes_eval():
    before, after = keys_by_title(make()), keys_by_title(make(**{"targets.0.batch_sizes": [1, 4, 16]}))
    new = {t for t in after if t not in before}
    assert new == {"convert f32 bs16", "infer f32 bs16"}
    changed = {t for t in before if after.get(t) != before[t]}
    assert changed == {"eval"}


def test_changing_the_checksum_reruns_export_and_downstream_only():
    before = keys_by_title(make())
    after = keys_by_title(make(**{"model.checksum": "md5:" + "b" * 32}))
    changed = {t for t in before if after[t] != before[t]}
    assert all(not t.startswith("preprocess") for t in changed)
    assert changed == {t for t in before if t.split()[0] in ("export", "convert", "infer", "eval")}


def test_changing_timing_reruns_only_inference_and_eval():
    before = keys_by_title(make())
    after = keys_by_title(make(timing={"min_seconds": 5.0}))
    changed = {t.split()[0] for t in before if after[t] != before[t]}
    assert changed == {"infer", "eval"}


def test_the_opencv_pipeline_rebuilds_preprocessing_and_downstream_and_passes_the_flag():
    before = keys_by_title(make())
    fast = make(**{"dataset.pipeline": "opencv"})
    after = keys_by_title(fast)
    changed = {t.split()[0] for t in before if after[t] != before[t]}
    assert changed == {"preprocess", "infer", "eval"}
    pre = [s for s in fast.steps if s.stage == "preprocess"]
    assert all(s.params.pipeline == "opencv" and "opencv" in s.command() for s in pre)
    assert all(s.params.pipeline == "seed" for s in make().steps if s.stage == "preprocess")


def test_the_pixel_limit_reaches_preprocessing_and_allow_missing_only_eval():
    base, limited, partial = make(), make(**{"dataset.max_pixels": 1_000_000}), make(**{"dataset.allow_missing": True})
    pre = [s for s in limited.steps if s.stage == "preprocess"]
    assert all(s.params.max_pixels == 1_000_000 and "--max-pixels" in s.command() for s in pre)
    assert all(s.params.max_pixels is None and "--max-pixels" not in s.command()
               for s in base.steps if s.stage == "preprocess")
    (ev,) = [s for s in partial.steps if s.stage == "eval"]
    assert ev.params.allow_missing and "--allow-missing" in ev.command()
    changed = {t for t, k in keys_by_title(partial).items() if keys_by_title(base)[t] != k}
    assert changed == {"eval"}


def test_store_is_not_part_of_keys():
    s = spec.parse(BASE, "s.yaml")
    a = plan.make_plan(s, "file:///one")
    b = plan.make_plan(dataclasses.replace(s), "file:///two")
    assert [x.key for x in a.steps] == [x.key for x in b.steps]
    assert a.steps[0].params.out != b.steps[0].params.out
