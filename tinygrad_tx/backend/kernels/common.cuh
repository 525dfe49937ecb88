// Helpers every kernel file includes: float16 and bfloat16 without CUDA's headers, and warp/block reductions.
//
// float16 is handled as raw bits converted with the PTX cvt instructions (what cuda_fp16.h does inside):
// NVRTC then needs no CUDA headers, so the kernels compile wherever CuPy runs. bfloat16 is the top half of a
// float32, converted with integer arithmetic. Both are storage types only: all arithmetic is float32, though
// not IEEE-exact float32 at the bottom of the range: CuPy compiles with -ftz=true, so denormal inputs and
// results flush to zero.
//
// Without __CUDA_ARCH__ this file is being compiled for the tests' CPU executor (tests/cuda_cpu), whose header
// gives the CUDA names their CPU meaning and supplies the float16 conversions in place of the PTX.
#pragma once

struct half_t {
    unsigned short bits;
};

// bfloat16: the float32 with the low 16 bits dropped
struct bf16_t {
    unsigned short bits;
};

__device__ __forceinline__ float to_float(float x) { return x; }

__device__ __forceinline__ float to_float(half_t x) {
#ifdef __CUDA_ARCH__
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
    return f;
#else
    return cuda_cpu_half_to_float(x.bits);
#endif
}

__device__ __forceinline__ float to_float(bf16_t x) { return __uint_as_float((unsigned int)x.bits << 16); }

template <typename T> __device__ __forceinline__ T from_float(float x);

template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }

template <> __device__ __forceinline__ half_t from_float<half_t>(float x) {
    half_t h;
#ifdef __CUDA_ARCH__
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
#else
    h.bits = cuda_cpu_float_to_half(x);
#endif
    return h;
}

// rounds to nearest, ties to even, as cvt.rn.bf16.f32 (which needs sm_80); NaN stays a quiet NaN
template <> __device__ __forceinline__ bf16_t from_float<bf16_t>(float x) {
    const unsigned int bits = __float_as_uint(x);
    bf16_t b;
    if ((bits & 0x7fffffffu) > 0x7f800000u) b.bits = (unsigned short)((bits >> 16) | 0x40u);
    else b.bits = (unsigned short)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    return b;
}

#define FULL_MASK 0xffffffffu
// -inf without math.h, which NVRTC does not ship
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// Block-wide sum and max; every thread gets the result. blockDim.x: a multiple of 32, at most 1024.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // a previous call may still be reading partial
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? partial[lane] : 0.f;  // every warp reduces the partials itself
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v) {
    __shared__ float partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? partial[lane] : NEG_INF;
    return warp_max(v);
}

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011), the counter-based
// generator cuRAND and PyTorch use on GPUs: ten rounds turn a 128-bit counter and a 64-bit key into four
// random words. random.cu makes streams of words with it; attention.cu regenerates its dropout mask.
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  // the golden ratio, and sqrt(3) - 1: the key's increments per round
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ void philox4x32_10(unsigned int c[4], unsigned int k0, unsigned int k1) {
    for (int round = 0; round < 10; ++round) {
        const unsigned long long p0 = (unsigned long long)PHILOX_M0 * c[0];
        const unsigned long long p1 = (unsigned long long)PHILOX_M1 * c[2];
        const unsigned int x0 = (unsigned int)(p1 >> 32) ^ c[1] ^ k0, x1 = (unsigned int)p1;
        const unsigned int x2 = (unsigned int)(p0 >> 32) ^ c[3] ^ k1, x3 = (unsigned int)p0;
        c[0] = x0, c[1] = x1, c[2] = x2, c[3] = x3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
}

// word w of the stream of `seed` that starts at block first_block: lane w % 4 of philox(counter = block)
__device__ __forceinline__ unsigned int philox_word(unsigned long long seed, unsigned long long first_block,
                                                    unsigned long long w) {
    const unsigned long long block = first_block + w / 4;
    unsigned int c[4] = {(unsigned int)block, (unsigned int)(block >> 32), 0u, 0u};
    philox4x32_10(c, (unsigned int)seed, (unsigned int)(seed >> 32));
    return c[w % 4];
}

// extern "C" entry points (unmangled names for RawModule.get_function) for float32, float16 and bfloat16
#define FOR_FLOAT_TYPES(MACRO) MACRO(f32, float) MACRO(f16, half_t) MACRO(bf16, bf16_t)
