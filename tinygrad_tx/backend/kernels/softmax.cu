// softmax and log_softmax over the last dimension of a (rows, n_cols) array, one block per row.
//   forward:   y = exp(x - max) / sum,  or  x - max - log(sum)
//   backward:  softmax:      dx = y * (dy - sum(dy * y))
//              log_softmax:  dx = dy - exp(y) * sum(dy)
#include "common.cuh"

template <typename T>
__device__ void softmax_forward(const T* x, T* out, long long n_cols, int log) {
    const long long offset = (long long)blockIdx.x * n_cols;
    float row_max = NEG_INF;
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) row_max = fmaxf(row_max, to_float(x[offset + c]));
    row_max = block_max(row_max);
    float total = 0.f;
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) total += expf(to_float(x[offset + c]) - row_max);
    total = block_sum(total);
    const float log_total = logf(total), inverse_total = 1.f / total;
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) {
        const float shifted = to_float(x[offset + c]) - row_max;
        out[offset + c] = from_float<T>(log ? shifted - log_total : expf(shifted) * inverse_total);
    }
}

template <typename T>
__device__ void softmax_backward(const T* grad_out, const T* out, T* grad_x, long long n_cols, int log) {
    const long long offset = (long long)blockIdx.x * n_cols;
    float dot = 0.f;  // sum(dy * y) for softmax, sum(dy) for log_softmax
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) {
        const float dy = to_float(grad_out[offset + c]);
        dot += log ? dy : dy * to_float(out[offset + c]);
    }
    dot = block_sum(dot);
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) {
        const float dy = to_float(grad_out[offset + c]), y = to_float(out[offset + c]);
        grad_x[offset + c] = from_float<T>(log ? dy - expf(y) * dot : y * (dy - dot));
    }
}

#define SOFTMAX_ENTRY_POINTS(SUFFIX, T)                                                                       \
    extern "C" __global__ void softmax_forward_##SUFFIX(const T* x, T* out, long long n_cols, int log) {     \
        softmax_forward<T>(x, out, n_cols, log);                                                             \
    }                                                                                                         \
    extern "C" __global__ void softmax_backward_##SUFFIX(const T* grad_out, const T* out, T* grad_x,         \
                                                         long long n_cols, int log) {                         \
        softmax_backward<T>(grad_out, out, grad_x, n_cols, log);                                             \
    }

FOR_FLOAT_TYPES(SOFTMAX_ENTRY_POINTS)
