// Cross-entropy of (rows, n_classes) logits against int64 class indices, one block per row.
// Keeps only the row's logsumexp for backward, never the (rows, n_classes) log-probabilities.
//   loss = (1 - eps) (lse - x[target]) + eps (lse - mean(x)),  0 where target == ignore_index
//   grad = scale[row] * (exp(x - lse) - eps / n_classes - (1 - eps) [c == target])
// scale folds in the incoming gradient, the ignore mask and the 1/n of a 'mean' (the caller computes it).
#include "common.cuh"

template <typename T>
__device__ void cross_entropy_forward(const T* logits, const long long* target, float* losses, float* lse_out,
                                      long long n_classes, long long ignore_index, float label_smoothing) {
    const long long row = blockIdx.x;
    const T* x = logits + row * n_classes;
    float row_max = NEG_INF, total = 0.f;
    for (long long c = threadIdx.x; c < n_classes; c += blockDim.x) {
        row_max = fmaxf(row_max, to_float(x[c]));
        total += to_float(x[c]);  // the sum of logits, for label smoothing
    }
    row_max = block_max(row_max);
    total = block_sum(total);
    float exps = 0.f;
    for (long long c = threadIdx.x; c < n_classes; c += blockDim.x) exps += expf(to_float(x[c]) - row_max);
    exps = block_sum(exps);
    if (threadIdx.x == 0) {
        const float lse = row_max + logf(exps);
        const long long t = target[row];
        float loss = 0.f;
        if (t != ignore_index) {
            loss = (1.f - label_smoothing) * (lse - to_float(x[t]));
            if (label_smoothing != 0.f) loss += label_smoothing * (lse - total / (float)n_classes);
        }
        losses[row] = loss;
        lse_out[row] = lse;
    }
}

template <typename T>
__device__ void cross_entropy_backward(const T* logits, const long long* target, const float* lse,
                                       const float* scale, T* grad, long long n_classes, long long ignore_index,
                                       float label_smoothing) {
    const long long row = blockIdx.x;
    const long long offset = row * n_classes;
    const long long t = target[row];
    const float row_scale = scale[row], row_lse = lse[row];
    const float smoothing = label_smoothing / (float)n_classes;
    for (long long c = threadIdx.x; c < n_classes; c += blockDim.x) {
        float g = 0.f;
        if (t != ignore_index) {
            g = expf(to_float(logits[offset + c]) - row_lse) - smoothing;
            if (c == t) g -= 1.f - label_smoothing;
            g *= row_scale;
        }
        grad[offset + c] = from_float<T>(g);
    }
}

#define CROSS_ENTROPY_ENTRY_POINTS(SUFFIX, T)                                                                  \
    extern "C" __global__ void cross_entropy_forward_##SUFFIX(const T* logits, const long long* target,       \
                                                              float* losses, float* lse, long long n_classes,  \
                                                              long long ignore_index, float label_smoothing) { \
        cross_entropy_forward<T>(logits, target, losses, lse, n_classes, ignore_index, label_smoothing);      \
    }                                                                                                          \
    extern "C" __global__ void cross_entropy_backward_##SUFFIX(                                                \
        const T* logits, const long long* target, const float* lse, const float* scale, T* grad,              \
        long long n_classes, long long ignore_index, float label_smoothing) {                                  \
        cross_entropy_backward<T>(logits, target, lse, scale, grad, n_classes, ignore_index, label_smoothing); \
    }

FOR_FLOAT_TYPES(CROSS_ENTROPY_ENTRY_POINTS)
