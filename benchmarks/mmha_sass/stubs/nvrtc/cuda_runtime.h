// hwsim benchmarks/mmha_sass: NVRTC has no CUDA runtime API header; the names the kernel needs from it
// (cudaStream_t, ...) come with NVRTC's built-in declarations. run.sh also points cuda.h and cuda_runtime_api.h here.
#pragma once
#include "std_shim.h"
