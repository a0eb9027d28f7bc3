// hwsim benchmarks/mmha_sass: the few C and C++ standard library names TensorRT-LLM's MMHA headers use, for NVRTC,
// which has no host standard library. They map onto libcu++ (CCCL 2.5). run.sh points <type_traits>, <cstdint>,
// <cmath>, <limits>, <assert.h>, <float.h>, ... at this header.
#pragma once
#include <cuda/std/type_traits>
#include <cuda/std/cstdint>
#include <cuda/std/limits>
#include <cuda/std/cassert>
#include <cuda/std/cfloat>
#include <cuda/std/cstddef>
#include <cuda/std/__algorithm/min.h>
#include <cuda/std/__algorithm/max.h>

namespace std { using namespace cuda::std; }

typedef cuda::std::int8_t int8_t;
typedef cuda::std::int16_t int16_t;
typedef cuda::std::int32_t int32_t;
typedef cuda::std::int64_t int64_t;
typedef cuda::std::uint8_t uint8_t;
typedef cuda::std::uint16_t uint16_t;
typedef cuda::std::uint32_t uint32_t;
typedef cuda::std::uint64_t uint64_t;
typedef cuda::std::size_t size_t;

#ifndef FLT_MAX
#define FLT_MAX 3.402823466e+38F  // the largest finite float (IEEE 754 binary32)
#endif

// C++ [c.math]: an integer argument of log2 is taken as a double
__host__ __device__ inline double log2(int x) { return log2((double) x); }
