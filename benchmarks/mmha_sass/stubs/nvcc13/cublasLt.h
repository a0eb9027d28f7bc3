// hwsim benchmarks/mmha_sass (nvcc 13 cross-check only): nothing of cublasLt reaches the MMHA kernel.
#pragma once
#include "cublas_v2.h"
