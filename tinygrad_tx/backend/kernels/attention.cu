// Scaled dot-product attention, softmax(Q K^T * scale) V, causal or unmasked, flash-attention style:
// the (L, S) score matrix never exists in memory.
//
// Layout: q (N, L, D), k and v (N, S, D), contiguous; N = batch * heads; head dim D <= MAX_HEAD_DIM.
// Causal means key j is visible from query i when j <= i (the top-left triangle, as tril(ones(L, S))).
//
// forward:  one warp per query row. Keys come in tiles of 32 staged in shared memory, one key per lane;
//           an online softmax keeps the running max m, the running sum l and the unnormalized output,
//           rescaled by exp(m_old - m_new) whenever the max grows. Saves only O and lse = m + log(l).
// backward: recomputes P = exp(S - lse) tile by tile (FlashAttention-2's scheme, without atomics):
//             delta_i = sum_d dO_i O_i                      (attention_backward_delta)
//             dS_ij = P_ij (dO_i . v_j - delta_i)
//             dQ_i = scale sum_j dS_ij k_j                  (attention_backward_query: a warp per query)
//             dK_j = scale sum_i dS_ij q_i,  dV_j = sum_i P_ij dO_i   (attention_backward_key_value: a warp per key)
// dropout (FlashAttention's scheme): the probabilities P are multiplied by Z, Z_ij = 1 / (1 - p) where kept and 0
// where dropped, a mask never stored: each kernel regenerates Z_ij from the Philox stream (see dropout_scale).
// Then O_i = sum_j P_ij Z_ij v_j, dV_j = sum_i P_ij Z_ij dO_i, dS_ij = P_ij (Z_ij dO_i . v_j - delta_i); the
// logsumexp and delta_i = dO_i . O_i keep their meaning.
#include "common.cuh"

#define TILE 32          // keys (or queries) per shared-memory tile: one per lane
#define ROWS 8           // warps per block: rows each block owns
#define MAX_HEAD_DIM 128
#define DIMS_PER_LANE (MAX_HEAD_DIM / 32)

struct Dropout {
    float p, keep_scale;  // keep_scale = 1 / (1 - p), computed in double by the caller
    unsigned long long seed, first_block;
};

// Z for element (n, i, j) of the (N, L, S) probabilities, element = (n L + i) S + j: kept when the uniform made
// from that word of the stream, (word >> 8) * 2^-24, is at least p. PhiloxGenerator.rand((N, L, S)) >= p draws
// the same mask from the same (seed, first_block): the array code can reproduce it exactly.
__device__ __forceinline__ float dropout_scale(const Dropout& dropout, long long element) {
    if (dropout.p == 0.f) return 1.f;
    const float uniform = (float)(philox_word(dropout.seed, dropout.first_block, element) >> 8) * 5.9604644775390625e-8f;
    return uniform >= dropout.p ? dropout.keep_scale : 0.f;
}

// a row's vector of length D in shared memory times another: lanes read the same row (broadcast)
// or rows TILE apart padded to D + 1 floats (no bank conflicts)
__device__ __forceinline__ float dot(const float* a, const float* b, int head_dim) {
    float total = 0.f;
    for (int d = 0; d < head_dim; ++d) total += a[d] * b[d];
    return total;
}

// the block stages keys and values start .. start + TILE - 1 (zeros past S) in shared memory
template <typename T>
__device__ __forceinline__ void load_key_value_tile(float (*keys)[MAX_HEAD_DIM + 1], float (*values)[MAX_HEAD_DIM + 1],
                                                    const T* k_n, const T* v_n, long long start, long long S,
                                                    int head_dim) {
    for (int index = threadIdx.x; index < TILE * head_dim; index += blockDim.x) {
        const int j = index / head_dim, d = index % head_dim;
        const long long key = start + j;
        keys[j][d] = key < S ? to_float(k_n[key * head_dim + d]) : 0.f;
        values[j][d] = key < S ? to_float(v_n[key * head_dim + d]) : 0.f;
    }
}

// grid (N, ceil(L / ROWS)), block 32 * ROWS
template <typename T>
__device__ void attention_forward(const T* q, const T* k, const T* v, T* out, float* lse, long long L, long long S,
                                  int head_dim, float scale, int causal, Dropout dropout) {
    __shared__ float query[ROWS][MAX_HEAD_DIM];
    __shared__ float keys[TILE][MAX_HEAD_DIM + 1];
    __shared__ float values[TILE][MAX_HEAD_DIM + 1];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long n = blockIdx.x;
    const long long row = (long long)blockIdx.y * ROWS + warp;
    const bool active = row < L;
    const T* q_n = q + n * L * head_dim;
    const T* k_n = k + n * S * head_dim;
    const T* v_n = v + n * S * head_dim;
    for (int d = lane; d < head_dim; d += 32) query[warp][d] = active ? to_float(q_n[row * head_dim + d]) * scale : 0.f;

    float acc[DIMS_PER_LANE];  // this lane's output dims: lane, lane + 32, ...
    for (int i = 0; i < DIMS_PER_LANE; ++i) acc[i] = 0.f;
    float running_max = NEG_INF, running_sum = 0.f;
    const long long last_row = min((long long)blockIdx.y * ROWS + ROWS, L) - 1;
    const long long key_end = causal ? min(S, last_row + 1) : S;  // keys past the block's last row are masked for all
    for (long long start = 0; start < key_end; start += TILE) {
        __syncthreads();  // the previous tile is consumed (and query is written, on the first pass)
        load_key_value_tile(keys, values, k_n, v_n, start, S, head_dim);
        __syncthreads();
        const long long key = start + lane;
        const bool visible = active && key < S && (!causal || key <= row);
        const float score = visible ? dot(query[warp], keys[lane], head_dim) : NEG_INF;
        const float new_max = fmaxf(running_max, warp_max(score));
        const float p = visible ? expf(score - new_max) : 0.f;
        const float kept = visible ? p * dropout_scale(dropout, (n * L + row) * S + key) : 0.f;
        const float correction = running_max == NEG_INF ? 0.f : expf(running_max - new_max);
        running_sum = running_sum * correction + warp_sum(p);  // dropped or not, every p normalizes
        for (int i = 0; i < DIMS_PER_LANE; ++i) acc[i] *= correction;
        for (int j = 0; j < TILE; ++j) {
            const float p_j = __shfl_sync(FULL_MASK, kept, j);  // all lanes shuffle: outside any lane-dependent branch
            for (int i = 0; i < DIMS_PER_LANE; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) acc[i] += p_j * values[j][d];
            }
        }
        running_max = new_max;
    }
    if (!active) return;
    const float inverse_sum = running_sum > 0.f ? 1.f / running_sum : 0.f;  // a row with no visible key: zeros
    for (int i = 0; i < DIMS_PER_LANE; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) out[(n * L + row) * head_dim + d] = from_float<T>(acc[i] * inverse_sum);
    }
    if (lane == 0) lse[n * L + row] = running_sum > 0.f ? running_max + logf(running_sum) : NEG_INF;
}

// delta_i = dO_i . O_i, one warp per row; grid (N, ceil(L / ROWS)), block 32 * ROWS
template <typename T>
__device__ void attention_backward_delta(const T* grad_out, const T* out, float* delta, long long L, int head_dim) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long row = (long long)blockIdx.y * ROWS + warp;
    if (row >= L) return;  // a whole warp leaves together: the shuffles below stay full
    const long long offset = ((long long)blockIdx.x * L + row) * head_dim;
    float total = 0.f;
    for (int d = lane; d < head_dim; d += 32) total += to_float(grad_out[offset + d]) * to_float(out[offset + d]);
    total = warp_sum(total);
    if (lane == 0) delta[(long long)blockIdx.x * L + row] = total;
}

// dQ: one warp per query row, keys in tiles; grid (N, ceil(L / ROWS)), block 32 * ROWS
template <typename T>
__device__ void attention_backward_query(const T* q, const T* k, const T* v, const T* grad_out, const float* lse,
                                         const float* delta, T* grad_q, long long L, long long S, int head_dim,
                                         float scale, int causal, Dropout dropout) {
    __shared__ float query[ROWS][MAX_HEAD_DIM];
    __shared__ float grad_row[ROWS][MAX_HEAD_DIM];
    __shared__ float keys[TILE][MAX_HEAD_DIM + 1];
    __shared__ float values[TILE][MAX_HEAD_DIM + 1];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long n = blockIdx.x;
    const long long row = (long long)blockIdx.y * ROWS + warp;
    const bool active = row < L;
    const T* k_n = k + n * S * head_dim;
    const T* v_n = v + n * S * head_dim;
    const long long row_offset = (n * L + row) * head_dim;
    for (int d = lane; d < head_dim; d += 32) {
        query[warp][d] = active ? to_float(q[row_offset + d]) * scale : 0.f;
        grad_row[warp][d] = active ? to_float(grad_out[row_offset + d]) : 0.f;
    }
    const float row_lse = active ? lse[n * L + row] : NEG_INF;
    const float row_delta = active ? delta[n * L + row] : 0.f;

    float acc[DIMS_PER_LANE];
    for (int i = 0; i < DIMS_PER_LANE; ++i) acc[i] = 0.f;
    const long long last_row = min((long long)blockIdx.y * ROWS + ROWS, L) - 1;
    const long long key_end = causal ? min(S, last_row + 1) : S;
    for (long long start = 0; start < key_end; start += TILE) {
        __syncthreads();
        load_key_value_tile(keys, values, k_n, v_n, start, S, head_dim);
        __syncthreads();
        const long long key = start + lane;
        const bool visible = active && key < S && (!causal || key <= row) && row_lse != NEG_INF;
        float grad_score = 0.f;
        if (visible) {
            const float p = expf(dot(query[warp], keys[lane], head_dim) - row_lse);
            const float z = dropout_scale(dropout, (n * L + row) * S + key);
            grad_score = p * (z * dot(grad_row[warp], values[lane], head_dim) - row_delta);
        }
        for (int j = 0; j < TILE; ++j) {
            const float grad_score_j = __shfl_sync(FULL_MASK, grad_score, j);
            for (int i = 0; i < DIMS_PER_LANE; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) acc[i] += grad_score_j * keys[j][d];
            }
        }
    }
    if (!active) return;
    for (int i = 0; i < DIMS_PER_LANE; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) grad_q[row_offset + d] = from_float<T>(acc[i] * scale);
    }
}

// dK and dV: one warp per key row, queries in tiles; grid (N, ceil(S / ROWS)), block 32 * ROWS
template <typename T>
__device__ void attention_backward_key_value(const T* q, const T* k, const T* v, const T* grad_out, const float* lse,
                                             const float* delta, T* grad_k, T* grad_v, long long L, long long S,
                                             int head_dim, float scale, int causal, Dropout dropout) {
    __shared__ float queries[TILE][MAX_HEAD_DIM + 1];
    __shared__ float grad_rows[TILE][MAX_HEAD_DIM + 1];
    __shared__ float tile_lse[TILE];
    __shared__ float tile_delta[TILE];
    __shared__ float key_row[ROWS][MAX_HEAD_DIM];
    __shared__ float value_row[ROWS][MAX_HEAD_DIM];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long n = blockIdx.x;
    const long long key = (long long)blockIdx.y * ROWS + warp;
    const bool active = key < S;
    const T* q_n = q + n * L * head_dim;
    const T* grad_out_n = grad_out + n * L * head_dim;
    const long long key_offset = (n * S + key) * head_dim;
    for (int d = lane; d < head_dim; d += 32) {
        key_row[warp][d] = active ? to_float(k[key_offset + d]) : 0.f;
        value_row[warp][d] = active ? to_float(v[key_offset + d]) : 0.f;
    }

    float acc_k[DIMS_PER_LANE], acc_v[DIMS_PER_LANE];
    for (int i = 0; i < DIMS_PER_LANE; ++i) acc_k[i] = acc_v[i] = 0.f;
    // causal: queries before the block's first key see none of its keys
    const long long query_start = causal ? (long long)blockIdx.y * ROWS : 0;
    for (long long start = query_start; start < L; start += TILE) {
        __syncthreads();
        for (int index = threadIdx.x; index < TILE * head_dim; index += blockDim.x) {
            const int i = index / head_dim, d = index % head_dim;
            const long long query = start + i;
            queries[i][d] = query < L ? to_float(q_n[query * head_dim + d]) * scale : 0.f;
            grad_rows[i][d] = query < L ? to_float(grad_out_n[query * head_dim + d]) : 0.f;
        }
        if (threadIdx.x < TILE) {
            const long long query = start + threadIdx.x;
            tile_lse[threadIdx.x] = query < L ? lse[n * L + query] : NEG_INF;
            tile_delta[threadIdx.x] = query < L ? delta[n * L + query] : 0.f;
        }
        __syncthreads();
        const long long query = start + lane;
        const bool visible = active && query < L && (!causal || key <= query) && tile_lse[lane] != NEG_INF;
        float kept = 0.f, grad_score = 0.f;  // P_ij Z_ij, and dS_ij
        if (visible) {
            const float p = expf(dot(queries[lane], key_row[warp], head_dim) - tile_lse[lane]);
            const float z = dropout_scale(dropout, (n * L + query) * S + key);
            kept = p * z;
            grad_score = p * (z * dot(grad_rows[lane], value_row[warp], head_dim) - tile_delta[lane]);
        }
        for (int j = 0; j < TILE; ++j) {
            const float p_j = __shfl_sync(FULL_MASK, kept, j);
            const float grad_score_j = __shfl_sync(FULL_MASK, grad_score, j);
            for (int i = 0; i < DIMS_PER_LANE; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) {
                    acc_v[i] += p_j * grad_rows[j][d];
                    acc_k[i] += grad_score_j * queries[j][d];  // queries are pre-scaled: this is scale * dS q
                }
            }
        }
    }
    if (!active) return;
    for (int i = 0; i < DIMS_PER_LANE; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) {
            grad_k[key_offset + d] = from_float<T>(acc_k[i]);
            grad_v[key_offset + d] = from_float<T>(acc_v[i]);
        }
    }
}

#define ATTENTION_ENTRY_POINTS(SUFFIX, T)                                                                          \
    extern "C" __global__ void attention_forward_##SUFFIX(const T* q, const T* k, const T* v, T* out, float* lse, \
                                                          long long L, long long S, int head_dim, float scale,     \
                                                          int causal, float dropout_p, float keep_scale,           \
                                                          unsigned long long seed, unsigned long long first_block) { \
        attention_forward<T>(q, k, v, out, lse, L, S, head_dim, scale, causal,                                    \
                             Dropout{dropout_p, keep_scale, seed, first_block});                                  \
    }                                                                                                              \
    extern "C" __global__ void attention_backward_delta_##SUFFIX(const T* grad_out, const T* out, float* delta,   \
                                                                 long long L, int head_dim) {                      \
        attention_backward_delta<T>(grad_out, out, delta, L, head_dim);                                           \
    }                                                                                                              \
    extern "C" __global__ void attention_backward_query_##SUFFIX(                                                  \
        const T* q, const T* k, const T* v, const T* grad_out, const float* lse, const float* delta, T* grad_q,   \
        long long L, long long S, int head_dim, float scale, int causal, float dropout_p, float keep_scale,       \
        unsigned long long seed, unsigned long long first_block) {                                                 \
        attention_backward_query<T>(q, k, v, grad_out, lse, delta, grad_q, L, S, head_dim, scale, causal,         \
                                    Dropout{dropout_p, keep_scale, seed, first_block});                           \
    }                                                                                                              \
    extern "C" __global__ void attention_backward_key_value_##SUFFIX(                                              \
        const T* q, const T* k, const T* v, const T* grad_out, const float* lse, const float* delta, T* grad_k,   \
        T* grad_v, long long L, long long S, int head_dim, float scale, int causal, float dropout_p,               \
        float keep_scale, unsigned long long seed, unsigned long long first_block) {                              \
        attention_backward_key_value<T>(q, k, v, grad_out, lse, delta, grad_k, grad_v, L, S, head_dim, scale,    \
                                        causal, Dropout{dropout_p, keep_scale, seed, first_block});               \
    }

FOR_FLOAT_TYPES(ATTENTION_ENTRY_POINTS)
