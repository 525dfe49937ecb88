// Random 32-bit words from Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011),
// the counter-based generator cuRAND and PyTorch use on GPUs. Word w of seed s is lane w % 4 of the block
// philox(key = s, counter = w / 4): a pure function of (s, w), so every word can be made by any thread, in any
// order, on any GPU, and a generator's whole state is the seed and the next word's index.
#include "common.cuh"

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

// out[i] = word first_block * 4 + i of the seed's stream, i < n; each thread makes the four words of a block
extern "C" __global__ void philox_words(unsigned int* out, long long n, unsigned long long seed,
                                        unsigned long long first_block) {
    const long long blocks = (n + 3) / 4;
    for (long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x; b < blocks; b += (long long)gridDim.x * blockDim.x) {
        const unsigned long long counter = first_block + (unsigned long long)b;
        unsigned int c[4] = {(unsigned int)counter, (unsigned int)(counter >> 32), 0u, 0u};
        philox4x32_10(c, (unsigned int)seed, (unsigned int)(seed >> 32));
        for (int lane = 0; lane < 4 && 4 * b + lane < n; ++lane) out[4 * b + lane] = c[lane];
    }
}
