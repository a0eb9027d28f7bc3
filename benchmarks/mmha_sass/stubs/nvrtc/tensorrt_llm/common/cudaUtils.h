// hwsim benchmarks/mmha_sass: replaces TensorRT-LLM's cudaUtils.h (host utilities, cuBLAS, logging) for NVRTC. The
// MMHA kernel needs only the bf16 and fp8 type headers it pulls in.
#pragma once
#include "tensorrt_llm/common/cudaBf16Wrapper.h"
#include "tensorrt_llm/common/cudaFp8Utils.h"
#include <cuda_runtime.h>
