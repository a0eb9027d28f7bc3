"""GPU target: the preset schema (:mod:`hardware.gpu.spec`) and kernel timing models (GEMM on thread-block tiles,
memory-bound kernels, attention kernels, collectives)."""
