// hwsim's row-serial attention product for hls4ml: C[h, m, :] = A[h, m, :] . B[h, :, :] one query row m per
// reuse_factor cycles (Jiang et al., arXiv 2402.01047: their attention streams the query rows), instead of
// hls4ml 1.3's nnet::einsum, which computes every row at once. Written by hwsim (mapping/fpga/hls_ext.py).
#ifndef NNET_HWSIM_ATTENTION_H_
#define NNET_HWSIM_ATTENTION_H_

#include "nnet_common.h"

namespace nnet {

struct hwsim_row_matmul_config {
    static const unsigned heads = 1;
    static const unsigned rows = 1;   // m: query rows, one per reuse_factor cycles
    static const unsigned inner = 1;  // k
    static const unsigned cols = 1;   // n
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = 1;  // heads * inner * cols / reuse_factor
    typedef float accum_t;
};

template <class in0_T, class in1_T, class res_T, typename CONFIG_T>
void hwsim_row_matmul(const in0_T a[CONFIG_T::heads * CONFIG_T::rows * CONFIG_T::inner],
                      const in1_T b[CONFIG_T::heads * CONFIG_T::inner * CONFIG_T::cols],
                      res_T res[CONFIG_T::heads * CONFIG_T::rows * CONFIG_T::cols]) {
RowLoop:
    for (unsigned m = 0; m < CONFIG_T::rows; m++) {
        #pragma HLS PIPELINE II = CONFIG_T::reuse_factor
        #pragma HLS ALLOCATION operation instances = mul limit = CONFIG_T::multiplier_limit
        for (unsigned h = 0; h < CONFIG_T::heads; h++) {
            for (unsigned n = 0; n < CONFIG_T::cols; n++) {
                typename CONFIG_T::accum_t acc = 0;
                for (unsigned k = 0; k < CONFIG_T::inner; k++) {
                    acc += (typename CONFIG_T::accum_t)(a[(h * CONFIG_T::rows + m) * CONFIG_T::inner + k] *
                                                        b[(h * CONFIG_T::inner + k) * CONFIG_T::cols + n]);
                }
                res[(h * CONFIG_T::rows + m) * CONFIG_T::cols + n] = (res_T)acc;
            }
        }
    }
}

} // namespace nnet

#endif
