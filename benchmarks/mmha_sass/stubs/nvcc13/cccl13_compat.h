// hwsim benchmarks/mmha_sass (nvcc 13 cross-check only, force-included): CCCL 3 (CUDA 13) dropped cub::Max, which
// the template names only in its multi-block final reduction. Define it as CCCL 3's maximum functor.
#pragma once
#include <cub/version.cuh>
#if CUB_VERSION >= 300000
#include <cuda/functional>
namespace cub { using Max = ::cuda::maximum<>; }
#endif
