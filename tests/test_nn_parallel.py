"""DistributedDataParallel on 2 CPU ranks (tests/distributed/workers/ddp_gpt2.py says what it checks), and the
bucket assignment on its own."""
import os
import sys

import tinygrad_tx as tg
from tinygrad_tx.nn.parallel.reducer import assign_buckets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed"))
from launch import check, run_ranks  # noqa: E402


def test_ddp_gpt2_on_two_ranks_equals_one_process_on_the_whole_batch():
    output = check(run_ranks("ddp_gpt2.py"))
    for rank in (0, 1):
        assert f"rank {rank}: DDP against one process" in output
        assert f"rank {rank}: no_sync accumulation against one process" in output
        assert f"rank {rank}: unused parameters refused" in output


def test_buckets_take_parameters_from_the_last_and_keep_dtypes_apart():
    params = [tg.zeros(1000), tg.zeros(1000), tg.zeros(10, dtype=tg.float16), tg.zeros(1000), tg.zeros(1000)]
    # 4000-byte float32 parameters, caps of 6000 bytes (the first 4000): the last parameter alone, then pairs
    assert assign_buckets(params, bucket_cap_bytes=6000, first_bucket_bytes=4000) == [[4], [3, 1], [2], [0]]
    assert assign_buckets(params, bucket_cap_bytes=10 ** 9) == [[4, 3, 1, 0], [2]]
