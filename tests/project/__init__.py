"""Repository-wide rules: import layers, runnable docs, the benchmarks' own parts and the layout of tests/."""
