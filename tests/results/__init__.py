"""Tests of jobs/results: metrics, tables, comparisons, plots and what the report states."""
