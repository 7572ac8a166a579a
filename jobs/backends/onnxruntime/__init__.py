"""ONNX Runtime backend: CPU by default; CUDA, TensorRT and CANN (Ascend) execution providers where installed."""
