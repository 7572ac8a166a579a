"""Tests of jobs/harness: reading ahead, ranking behind, and device timing."""
