"""Tests of jobs/converters: the atc target against a stand-in atc."""
