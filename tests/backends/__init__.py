"""Tests of jobs/backends: the acl backend and ONNX Runtime's CANN provider."""
