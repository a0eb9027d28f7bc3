"""GPU mapper: groups workload ops into kernels and builds a one-stream program (:mod:`mapping.gpu.mapper`)."""
