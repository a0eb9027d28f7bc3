// hwsim benchmarks/mmha_sass: an explicit instantiation of TensorRT-LLM's MMHA decode kernel (the v0.9-era template,
// compiled unchanged) with the template arguments its launcher uses (decoderMaskedMultiheadAttentionLaunch.h,
// mmha_launch_kernel_ex through MMHA_KERNEL(256, false)):
//   T = uint16_t (fp16), Dh = 128, THDS_PER_BLOCK = 256, no cross attention, no beams, DO_MULTI_BLOCK = MB,
//   no position shift, no implicit relative-attention bias, a linear (non-paged) KV cache.
// CACHE_T is the KV-cache element: uint16_t (fp16) or __nv_fp8_e4m3.
#include "tensorrt_llm/kernels/decoderMaskedMultiheadAttention/decoderMaskedMultiheadAttentionTemplate.h"
#ifndef CACHE_T
#define CACHE_T uint16_t
#endif
#ifndef MB
#define MB false
#endif
namespace tensorrt_llm { namespace kernels { namespace mmha {
template __global__ void masked_multihead_attention_kernel<uint16_t, CACHE_T, CACHE_T, KVLinearBuffer, KVLinearBuffer,
    128, 256, /*DO_CROSS_ATTENTION*/ false, /*HAS_BEAMS*/ false, /*DO_MULTI_BLOCK*/ MB, /*POS_SHIFT*/ false,
    /*IMPLICIT_REL_ATTN_BIAS*/ false>(Multihead_attention_params<uint16_t, false>, KVLinearBuffer, KVLinearBuffer);
}}}
