"""Tests of the Helm chart (charts/) and the container images (images/)."""
