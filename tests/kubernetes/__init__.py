"""Tests of controller/kubernetes: Job manifests, names, the executor and cluster credentials."""
