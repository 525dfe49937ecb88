// GELU, exact (erf) or tanh-approximated, elementwise over n values (grid-stride loops).
// Backward recomputes from x instead of keeping the forward's tanh or cdf: one array less in memory.
//   exact:  y = x * Phi(x),                       dy/dx = Phi(x) + x * phi(x)
//   tanh:   y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
//           dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2),  t = tanh(u)
#include "common.cuh"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f
#define CUBIC 0.044715f

template <typename T>
__device__ void gelu_forward(const T* x, T* out, long long n, int approximate_tanh) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float v = to_float(x[i]);
        const float y = approximate_tanh ? 0.5f * v * (1.f + tanhf(SQRT_2_OVER_PI * (v + CUBIC * v * v * v)))
                                         : 0.5f * v * (1.f + erff(v * INV_SQRT_2));
        out[i] = from_float<T>(y);
    }
}

template <typename T>
__device__ void gelu_backward(const T* grad_out, const T* x, T* grad_x, long long n, int approximate_tanh) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const float v = to_float(x[i]);
        float derivative;
        if (approximate_tanh) {
            const float t = tanhf(SQRT_2_OVER_PI * (v + CUBIC * v * v * v));
            derivative = 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * SQRT_2_OVER_PI * (1.f + 3.f * CUBIC * v * v);
        } else {
            derivative = 0.5f * (1.f + erff(v * INV_SQRT_2)) + v * expf(-0.5f * v * v) * INV_SQRT_2PI;
        }
        grad_x[i] = from_float<T>(to_float(grad_out[i]) * derivative);
    }
}

#define GELU_ENTRY_POINTS(SUFFIX, T)                                                                          \
    extern "C" __global__ void gelu_forward_##SUFFIX(const T* x, T* out, long long n, int approximate_tanh) { \
        gelu_forward<T>(x, out, n, approximate_tanh);                                                        \
    }                                                                                                         \
    extern "C" __global__ void gelu_backward_##SUFFIX(const T* grad_out, const T* x, T* grad_x, long long n, \
                                                      int approximate_tanh) {                                 \
        gelu_backward<T>(grad_out, x, grad_x, n, approximate_tanh);                                          \
    }

FOR_FLOAT_TYPES(GELU_ENTRY_POINTS)
