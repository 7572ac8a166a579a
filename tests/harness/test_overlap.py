"""Reading ahead and ranking behind (jobs.harness.overlap): order, errors and early exits."""

from __future__ import annotations

import threading

import pytest

from jobs.harness import overlap


def test_prefetch_yields_everything_in_order():
    assert list(overlap.prefetch(iter(range(100)), depth=2)) == list(range(100))
    assert list(overlap.prefetch(iter([]), depth=2)) == []


def test_prefetch_reads_in_another_thread():
    seen = []

    def items():
        for i in range(3):
            seen.append(threading.current_thread().name)
            yield i

    assert list(overlap.prefetch(items())) == [0, 1, 2]
    assert set(seen) == {"ghostbench-prefetch"}


def test_prefetch_raises_the_producers_error_where_it_happened():
    def items():
        yield 1
        yield 2
        raise ValueError("part-00003.npy: ends early")

    got = []
    with pytest.raises(ValueError, match="ends early"):
        for x in overlap.prefetch(items(), depth=1):
            got.append(x)
    assert got == [1, 2]


def test_leaving_early_stops_the_producer():
    produced = []
    finished = threading.Event()

    def items():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            finished.set()

    gen = overlap.prefetch(items(), depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()  # the consumer's loop ended (break, exception)
    assert len(produced) <= 3 + 2 + 2  # taken, queued, in hand: not the whole input
    assert not any(t.name == "ghostbench-prefetch" and t.is_alive() for t in threading.enumerate())


def test_in_order_worker_keeps_order_and_bounds_the_backlog():
    out = []
    gate = threading.Event()

    def slow(i):
        gate.wait()
        out.append(i)

    with overlap.InOrderWorker(backlog=3) as worker:
        for i in range(3):
            worker.submit(slow, i)
        gate.set()  # one more submit would have to wait for the first to finish
        for i in range(3, 50):
            worker.submit(out.append, i)
        worker.finish()
    assert out == list(range(50))


def test_in_order_worker_raises_the_first_failure():
    def fail():
        raise OSError("disk full")

    with overlap.InOrderWorker() as worker:
        worker.submit(fail)
        with pytest.raises(OSError, match="disk full"):
            worker.finish()
