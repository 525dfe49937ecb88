// Layer normalization over the last dimension of a (rows, n_cols) array.
//   forward:          y = (x - mean) * rstd * w + b, keeping mean and rstd (float32) per row
//   backward_input:   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * w
//   backward_params:  per-chunk column sums of dy * xhat and dy; the caller adds the chunks
// weight and bias are optional (has_weight / has_bias = 0: the pointer is not read).
#include "common.cuh"

// one block per row; the row is read twice (mean, then variance around it), so no E[x^2] - E[x]^2 cancellation
template <typename T>
__device__ void layer_norm_forward(const T* x, const T* weight, const T* bias, T* out, float* mean_out,
                                   float* rstd_out, long long n_cols, float eps, int has_weight, int has_bias) {
    const long long row = blockIdx.x;
    const T* x_row = x + row * n_cols;
    T* out_row = out + row * n_cols;
    float sum = 0.f;
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) sum += to_float(x_row[c]);
    const float mean = block_sum(sum) / (float)n_cols;
    float squares = 0.f;
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) {
        const float centered = to_float(x_row[c]) - mean;
        squares += centered * centered;
    }
    const float rstd = rsqrtf(block_sum(squares) / (float)n_cols + eps);
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) {
        float y = (to_float(x_row[c]) - mean) * rstd;
        if (has_weight) y *= to_float(weight[c]);
        if (has_bias) y += to_float(bias[c]);
        out_row[c] = from_float<T>(y);
    }
    if (threadIdx.x == 0) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
}

// one block per row
template <typename T>
__device__ void layer_norm_backward_input(const T* grad_out, const T* x, const T* weight, const float* mean,
                                          const float* rstd, T* grad_x, long long n_cols, int has_weight) {
    const long long row = blockIdx.x;
    const long long offset = row * n_cols;
    const float row_mean = mean[row], row_rstd = rstd[row];
    float sum_dxhat = 0.f, sum_dxhat_xhat = 0.f;
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) {
        float dxhat = to_float(grad_out[offset + c]);
        if (has_weight) dxhat *= to_float(weight[c]);
        const float xhat = (to_float(x[offset + c]) - row_mean) * row_rstd;
        sum_dxhat += dxhat;
        sum_dxhat_xhat += dxhat * xhat;
    }
    const float mean_dxhat = block_sum(sum_dxhat) / (float)n_cols;
    const float mean_dxhat_xhat = block_sum(sum_dxhat_xhat) / (float)n_cols;
    for (long long c = threadIdx.x; c < n_cols; c += blockDim.x) {
        float dxhat = to_float(grad_out[offset + c]);
        if (has_weight) dxhat *= to_float(weight[c]);
        const float xhat = (to_float(x[offset + c]) - row_mean) * row_rstd;
        grad_x[offset + c] = from_float<T>(row_rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
    }
}

#define PARAM_COLS 32
#define PARAM_ROW_THREADS 8

// grid (ceil(n_cols / 32), n_chunks), block (32, 8): threads along x read neighbouring columns (coalesced),
// the 8 rows of threads split the chunk's rows and are summed in shared memory. Deterministic: no atomics.
template <typename T>
__device__ void layer_norm_backward_params(const T* grad_out, const T* x, const float* mean, const float* rstd,
                                           float* partial_weight, float* partial_bias, long long n_rows,
                                           long long n_cols, long long rows_per_chunk) {
    __shared__ float weight_sums[PARAM_ROW_THREADS][PARAM_COLS + 1];
    __shared__ float bias_sums[PARAM_ROW_THREADS][PARAM_COLS + 1];
    const long long col = (long long)blockIdx.x * PARAM_COLS + threadIdx.x;
    const long long first = (long long)blockIdx.y * rows_per_chunk;
    const long long last = min(first + rows_per_chunk, n_rows);
    float grad_weight = 0.f, grad_bias = 0.f;
    if (col < n_cols) {
        for (long long row = first + threadIdx.y; row < last; row += PARAM_ROW_THREADS) {
            const float dy = to_float(grad_out[row * n_cols + col]);
            grad_weight += dy * (to_float(x[row * n_cols + col]) - mean[row]) * rstd[row];
            grad_bias += dy;
        }
    }
    weight_sums[threadIdx.y][threadIdx.x] = grad_weight;
    bias_sums[threadIdx.y][threadIdx.x] = grad_bias;
    __syncthreads();
    if (threadIdx.y == 0 && col < n_cols) {
        for (int i = 1; i < PARAM_ROW_THREADS; ++i) {
            grad_weight += weight_sums[i][threadIdx.x];
            grad_bias += bias_sums[i][threadIdx.x];
        }
        partial_weight[(long long)blockIdx.y * n_cols + col] = grad_weight;
        partial_bias[(long long)blockIdx.y * n_cols + col] = grad_bias;
    }
}

#define LAYER_NORM_ENTRY_POINTS(SUFFIX, T)                                                                        \
    extern "C" __global__ void layer_norm_forward_##SUFFIX(const T* x, const T* weight, const T* bias, T* out,   \
                                                           float* mean, float* rstd, long long n_cols, float eps, \
                                                           int has_weight, int has_bias) {                       \
        layer_norm_forward<T>(x, weight, bias, out, mean, rstd, n_cols, eps, has_weight, has_bias);              \
    }                                                                                                             \
    extern "C" __global__ void layer_norm_backward_input_##SUFFIX(const T* grad_out, const T* x, const T* weight, \
                                                                  const float* mean, const float* rstd,          \
                                                                  T* grad_x, long long n_cols, int has_weight) {  \
        layer_norm_backward_input<T>(grad_out, x, weight, mean, rstd, grad_x, n_cols, has_weight);              \
    }                                                                                                             \
    extern "C" __global__ void layer_norm_backward_params_##SUFFIX(                                               \
        const T* grad_out, const T* x, const float* mean, const float* rstd, float* partial_weight,              \
        float* partial_bias, long long n_rows, long long n_cols, long long rows_per_chunk) {                      \
        layer_norm_backward_params<T>(grad_out, x, mean, rstd, partial_weight, partial_bias, n_rows, n_cols,     \
                                      rows_per_chunk);                                                            \
    }

FOR_FLOAT_TYPES(LAYER_NORM_ENTRY_POINTS)
