"""A rank that dies, fails or hangs ends the run within the timeout, with errors that name it."""
import re
import time

import pytest

from launch import run_ranks


@pytest.mark.parametrize("how, launcher_says", [("kill", "rank 1 (pid {}) was killed by signal 9 (SIGKILL)"),
                                                ("raise", "rank 1 (pid {}) exited with status 1")])
def test_a_dead_rank_is_named_by_the_others_and_by_the_launcher(how, launcher_says):
    start = time.monotonic()
    result = run_ranks("failures.py", how, 60)
    elapsed = time.monotonic() - start
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "RankFailure: all_reduce: rank 1 of 2 died or exited" in output, output
    assert re.search(re.escape(launcher_says).replace(r"\{\}", r"\d+"), output), output
    assert elapsed < 30, elapsed  # noticed at once, not after the 60 s timeout
    stopped = float(re.search(r"rank 0 stopped waiting after ([\d.]+) s", output).group(1))
    assert stopped < 5, output


def test_a_stuck_rank_makes_the_others_time_out():
    result = run_ranks("failures.py", "hang", 2)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "DistBackendError: all_reduce on rank 0 did not finish within 2 s" in output, output
    assert "rank 0 (pid" in output and "exited with status 1" in output
