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
