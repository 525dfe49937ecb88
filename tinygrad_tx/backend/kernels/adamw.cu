// One AdamW step over many float32 parameters in one launch (a "multi-tensor apply").
// The caller passes device arrays of pointers (params, grads, first and second moments) and sizes;
// blockIdx.y picks the parameter, blocks along x stride over its elements. Same update as
// optim/adam.py with decoupled weight decay (PyTorch's AdamW):
//   p *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
//   p -= lr / bias_correction1 * m / (sqrt(v) / sqrt(bias_correction2) + eps)
#include "common.cuh"

extern "C" __global__ void adamw_step_f32(const unsigned long long* params, const unsigned long long* grads,
                                          const unsigned long long* exp_avgs, const unsigned long long* exp_avg_sqs,
                                          const long long* sizes, float lr, float beta1, float beta2, float eps,
                                          float weight_decay, float bias_correction1, float bias_correction2_sqrt) {
    const long long t = blockIdx.y;
    float* param = reinterpret_cast<float*>(params[t]);
    const float* grad = reinterpret_cast<const float*>(grads[t]);
    float* exp_avg = reinterpret_cast<float*>(exp_avgs[t]);
    float* exp_avg_sq = reinterpret_cast<float*>(exp_avg_sqs[t]);
    const long long size = sizes[t];
    const float decay = 1.f - lr * weight_decay;
    const float step_size = lr / bias_correction1;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size; i += (long long)gridDim.x * blockDim.x) {
        const float g = grad[i];
        const float m = beta1 * exp_avg[i] + (1.f - beta1) * g;
        const float v = beta2 * exp_avg_sq[i] + (1.f - beta2) * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = param[i] * decay - step_size * m / (sqrtf(v) / bias_correction2_sqrt + eps);
    }
}
