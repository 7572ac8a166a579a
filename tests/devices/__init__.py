"""Tests of jobs/devices: CPU limits, power sampling and what an NPU run records about its chip."""
