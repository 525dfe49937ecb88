"""The collectives on 2 CPU ranks against NumPy, mismatched calls, and NcclCollectives on a stand-in NCCL: see
workers/collectives.py."""
from launch import check, run_ranks


def test_collectives_on_two_ranks_agree_with_numpy_and_name_mismatches():
    output = check(run_ranks("collectives.py"))
    for rank in (0, 1):
        assert f"rank {rank}: every collective agrees with NumPy" in output
        assert f"rank {rank}: NcclCollectives on the stand-in NCCL agree" in output
    assert output.count("mismatch: ") == 6
