"""Tests of jobs/stages: the stage commands, their shared skeleton and the typed contract between them."""
