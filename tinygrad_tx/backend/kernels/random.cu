// Random 32-bit words from Philox4x32-10 (in common.cuh). Word w of seed s is lane w % 4 of the block
// philox(key = s, counter = w / 4): a pure function of (s, w), so every word can be made by any thread, in any
// order, on any GPU, and a generator's whole state is the seed and the next word's index.
#include "common.cuh"

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
