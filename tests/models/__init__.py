"""Tests of jobs/models: GhostNet against the facts, and fetching, verifying and loading weights."""
