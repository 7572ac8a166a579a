"""Hand-made report rows for the tests of the report's tables."""

from __future__ import annotations

from jobs.artifacts import records


def report_row(target, batch_size, throughput):
    """A report row with only what the throughput tables read."""
    return records.ReportRun(run="", target=target, backend="", device="", input_mode=None, batch_size=batch_size,
                             num_images=0, throughput=throughput, compute_mean_ms=0.0, compute_p99_ms=0.0,
                             end_to_end_images_per_second=0.0, passes=1, accuracy={"1": 0.0}, gate_pass=True)
