"""Tests of jobs/store: the directory store and s3:// stores against a real S3 server."""
