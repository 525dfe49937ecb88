"""Philox4x32-10 in NumPy: the reference our random.cu kernel and the GPU generator are checked against."""
import numpy as np

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)


def philox_reference(counters, key):
    """counters (n, 4) uint32, key (2,) -> (n, 4) uint32."""
    c = [counters[:, i].astype(np.uint64) for i in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    mask = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0, p1 = np.uint64(PHILOX_M[0]) * c[0], np.uint64(PHILOX_M[1]) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & mask, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & mask]
        k0, k1 = (k0 + np.uint64(PHILOX_W[0])) & mask, (k1 + np.uint64(PHILOX_W[1])) & mask
    return np.stack(c, axis=1).astype(np.uint32)


def philox_words(n, seed, first_block):
    """What random.cu's philox_words(n, seed, first_block) gives: block b's counter is (b low, b high, 0, 0)."""
    blocks = np.uint64(first_block) + np.arange(-(-n // 4), dtype=np.uint64)
    counters = np.stack([blocks & np.uint64(0xFFFFFFFF), blocks >> np.uint64(32), 0 * blocks, 0 * blocks], axis=1)
    return philox_reference(counters.astype(np.uint32), (seed & 0xFFFFFFFF, seed >> 32)).reshape(-1)[:n]
