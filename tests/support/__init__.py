"""What the test rooms share: test doubles (fake aclruntime, atc, API server, S3 proxy), the S3 server, the
tiny ONNX model, the repository's paths, and the fixtures and helpers more than one test module uses.

Test modules import from here, never from each other."""
