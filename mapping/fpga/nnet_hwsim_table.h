// hwsim's table-based activation for hls4ml (GELU, SiLU and other functions hls4ml 1.3 lacks).
// Written by hwsim (mapping/fpga/hls_ext.py); the table is a weight variable the Python side fills with
// f(lo + (i + 0.5) * step), i = 0 .. table_size - 1, lo = -range, step = 2 * range / table_size (a power of two).
// Below lo: table[0]. At or above range: x itself when linear_above (GELU, SiLU tend to x), else the last entry.
#ifndef NNET_HWSIM_TABLE_H_
#define NNET_HWSIM_TABLE_H_

#include "nnet_common.h"
#include "hls_stream.h"

namespace nnet {

struct hwsim_table_config {
    static const unsigned n_in = 10;
    static const unsigned table_size = 1024;
    static const int range = 8;                // table covers [-range, range)
    static const unsigned inv_step = 64;       // table_size / (2 * range)
    static const bool linear_above = true;
    static const unsigned reuse_factor = 1;
    typedef ap_fixed<18, 8> table_t;
};

template <class in_T, class out_T, typename CONFIG_T>
out_T hwsim_table_lookup(in_T x, const typename CONFIG_T::table_t table[CONFIG_T::table_size]) {
    #pragma HLS INLINE
    typedef ap_fixed<in_T::width + 2, in_T::iwidth + 2> shifted_t;
    shifted_t xs = x;
    if (xs >= (shifted_t)CONFIG_T::range) {
        return CONFIG_T::linear_above ? (out_T)x : (out_T)table[CONFIG_T::table_size - 1];
    }
    shifted_t s = xs + (shifted_t)CONFIG_T::range;
    if (s < 0) {
        return (out_T)table[0];
    }
    ap_ufixed<in_T::width + 2 + 16, in_T::iwidth + 2 + 16> scaled = s;
    scaled *= CONFIG_T::inv_step;
    unsigned index = scaled.to_uint();
    if (index > CONFIG_T::table_size - 1)
        index = CONFIG_T::table_size - 1;
    return (out_T)table[index];
}

// io_parallel
template <class data_T, class res_T, typename CONFIG_T>
void hwsim_table(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in],
                 const typename CONFIG_T::table_t table[CONFIG_T::table_size]) {
    #pragma HLS PIPELINE
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        res[i] = hwsim_table_lookup<data_T, res_T, CONFIG_T>(data[i], table);
    }
}

// io_stream: one stream word (a channel vector) per cycle
template <class data_T, class res_T, typename CONFIG_T>
void hwsim_table(hls::stream<data_T> &data, hls::stream<res_T> &res,
                 const typename CONFIG_T::table_t table[CONFIG_T::table_size]) {
    for (unsigned i = 0; i < CONFIG_T::n_in / res_T::size; i++) {
        #pragma HLS PIPELINE
        data_T in = data.read();
        res_T out;
        PRAGMA_DATA_PACK(out)
        for (unsigned j = 0; j < res_T::size; j++) {
            #pragma HLS UNROLL
            out[j] = hwsim_table_lookup<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(in[j], table);
        }
        res.write(out);
    }
}

} // namespace nnet

#endif
