// One AdamW step over many float32 parameters in one launch (a "multi-tensor apply").
// The caller passes device arrays of pointers (params, grads, first and second moments) and sizes;
// blockIdx.y picks the parameter, blocks along x stride over its elements. The update is torch.optim.AdamW's,
// in its order of float32 operations, so the two agree to the last bit or two:
//   p *= decay                                  decay = 1 - lr * weight_decay
//   m = lerp(m, g, 1 - beta1)                   as torch's lerp_: one fused multiply-add
//   v = beta2 v + (1 - beta2) g^2
//   p -= step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps)
// The scalars come from the caller computed in double and rounded once: 1 - beta in float32 here would
// subtract a beta already rounded to float32 (1 - 0.999f is 1.3e-5 relative off).
#include "common.cuh"

extern "C" __global__ void adamw_step_f32(const unsigned long long* params, const unsigned long long* grads,
                                          const unsigned long long* exp_avgs, const unsigned long long* exp_avg_sqs,
                                          const long long* sizes, float beta1, float one_minus_beta1, float beta2,
                                          float one_minus_beta2, float eps, float decay, float step_size,
                                          float bias_correction2_sqrt) {
    const long long t = blockIdx.y;
    float* param = reinterpret_cast<float*>(params[t]);
    const float* grad = reinterpret_cast<const float*>(grads[t]);
    float* exp_avg = reinterpret_cast<float*>(exp_avgs[t]);
    float* exp_avg_sq = reinterpret_cast<float*>(exp_avg_sqs[t]);
    const long long size = sizes[t];
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size; i += (long long)gridDim.x * blockDim.x) {
        const float g = grad[i], m_old = exp_avg[i];
        const float m = one_minus_beta1 < 0.5f ? fmaf(one_minus_beta1, g - m_old, m_old) : fmaf(-beta1, g - m_old, g);
        const float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = param[i] * decay - step_size * m / (sqrtf(v) / bias_correction2_sqrt + eps);
    }
}
