"""Mapping layer: ONNX import into an operator graph, the block-level transformer IR, workloads, and (later)
per-target mapping passes. Uses ``hardware`` for formats and errors; never imports ``simulator``."""
