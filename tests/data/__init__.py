"""Tests of jobs/data: the preprocessing recipe (PIL and the opt-in OpenCV pipeline)."""
