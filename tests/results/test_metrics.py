import numpy as np
import pytest

from jobs.artifacts import records
from jobs.results import metrics, tables
from tests.support.reports import report_row


def test_topk_orders_best_first_and_breaks_ties_by_index():
    logits = np.array([[0.1, 3.0, 3.0, 1.0, -2.0, 0.5],
                       [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    idx, scores = metrics.topk(logits, 5)
    assert idx.tolist() == [[1, 2, 3, 5, 0], [0, 1, 2, 3, 4]]
    assert scores[0].tolist() == pytest.approx([3.0, 3.0, 1.0, 0.5, 0.1])


def test_topk_a_row_of_equal_logits_ranks_the_lowest_classes_first():
    # issue 20.1: argpartition kept classes 984-988 of a row of equal logits
    idx, scores = metrics.topk(np.zeros((3, 1000), dtype=np.float32), 5)
    assert idx.tolist() == [[0, 1, 2, 3, 4]] * 3
    assert scores.tolist() == [[0.0] * 5] * 3


def test_topk_ties_after_the_leaders_take_the_lowest_tied_classes():
    row = np.zeros((1, 1000), dtype=np.float32)
    row[0, 500:] = 1.0           # classes 500-999 tied ...
    row[0, 7:10] = [4.0, 3.0, 2.0]  # ... after three leaders
    idx, _ = metrics.topk(row, 5)
    assert idx.tolist() == [[7, 8, 9, 500, 501]]  # was [7, 8, 9, 965, 966]


def test_topk_is_a_stable_descending_sort_with_nan_last():
    rng = np.random.default_rng(7)
    for trial in range(200):  # few distinct values: ties everywhere, across the cut too
        x = rng.integers(-3, 3, size=(40, 30)).astype(np.float32)
        for value, share in ((np.nan, 0.3 * (trial % 3 == 0)), (np.inf, 0.1 * (trial % 5 == 0)),
                             (-np.inf, 0.1 * (trial % 7 == 0)), (-0.0, 0.5 * (trial % 11 == 0))):
            x[rng.random(x.shape) < share] = value
        expected = np.argsort(-x, axis=1, kind="stable")
        for k in (1, 5, 30):
            assert metrics.topk(x, k)[0].tolist() == expected[:, :k].tolist()


def test_topk_ranks_infinities_at_the_ends_and_nan_below_everything():
    x = np.array([[1.0, np.nan, -np.inf, np.inf, 2.0, np.nan]], dtype=np.float32)
    idx, scores = metrics.topk(x, 6)
    assert idx.tolist() == [[3, 4, 0, 2, 1, 5]]
    assert metrics.top1(np.array([[np.nan, 1.0, 1.0]], dtype=np.float32)).tolist() == [1]  # argmax says 0
    assert metrics.top1(np.array([[np.nan, np.nan]], dtype=np.float32)).tolist() == [0]


def test_nonfinite_counts_values_by_kind_and_the_rows_holding_them():
    x = np.zeros((4, 6), dtype=np.float32)
    assert metrics.nonfinite(x) is None
    x[1, 2], x[1, 3], x[3, 0], x[3, 5] = np.nan, np.inf, -np.inf, np.nan
    count = metrics.nonfinite(x)
    assert count.rows.tolist() == [1, 3] and (count.nan, count.posinf, count.neginf) == (2, 1, 1)


def test_topk_accuracy_hand_made():
    top = np.array([[1, 2, 3, 4, 5],    # label 1: top-1 hit
                    [9, 7, 8, 6, 5],    # label 8: hit from top-3
                    [0, 0, 0, 0, 0],    # label 4: miss
                    [3, 4, 5, 6, 2]])   # label 2: hit at top-5
    labels = np.array([1, 8, 4, 2])
    acc = metrics.topk_accuracy(top, labels)
    assert acc == {1: 25.0, 2: 25.0, 3: 50.0, 4: 50.0, 5: 75.0}


def test_latency_stats_and_throughput():
    s = records.LatencyStats.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.min == 1.0 and s.max == 100.0 and s.median == 3.0 and s.mean == 22.0
    assert s.count == 5
    assert s.p99 == pytest.approx(96.16)
    assert s.to_dict()["percentile(99%)"] == s.p99  # ais_infer's key
    assert records.LatencyStats.from_dict(s.to_dict()) == s
    assert records.throughput(16, 4.652794558563232) == pytest.approx(3438.8, abs=0.1)  # the seed's bs16 example


def test_seed_accuracy_format():
    typed = records.SeedAccuracy(50000, 1000, {1: 73.986, 2: 80.0, 3: 85.0, 4: 88.0, 5: 91.4649})
    acc = typed.to_dict()
    back = records.SeedAccuracy.from_dict(acc)
    assert back.num_images == 50000 and back.topk[1] == 73.99 and back.topk[5] == 91.46
    assert acc["title"] == "Overall statistical evaluation"
    assert acc["value"][0] == {"key": "Number of images", "value": "50000"}
    assert acc["value"][1] == {"key": "Number of classes", "value": "1000"}
    assert acc["value"][2] == {"key": "Top1 accuracy", "value": "73.99%"}
    assert acc["value"][6] == {"key": "Top5 accuracy", "value": "91.46%"}


def test_throughput_table_ratios():
    runs = [report_row("a", 1, 100.0), report_row("b", 1, 150.0), report_row("a", 8, 200.0)]
    header, rows = tables.throughput_table(runs)
    assert header == ["Batch size", "a", "b", "b/a"]
    assert rows == [["1", "100.0", "150.0", "1.5000"], ["8", "200.0", "-", "-"]]
