"""ONNX Runtime backend: CPU by default; CUDA and TensorRT execution providers where installed."""
