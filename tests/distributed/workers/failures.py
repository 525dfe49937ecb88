"""Rank 1 fails in the way argv[1] names, while rank 0 waits for it in an all_reduce."""
import os
import signal
import sys
import time

import tinygrad_tx as tg
import tinygrad_tx.distributed as dist

dist.init_process_group("gloo", timeout=float(sys.argv[2]))
t = tg.ones(3)
dist.all_reduce(t)
if dist.get_rank() == 1:
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif sys.argv[1] == "raise":
        raise ValueError("rank 1 fails on purpose")
    elif sys.argv[1] == "hang":
        time.sleep(4)
        sys.exit(0)
start = time.monotonic()
try:
    dist.all_reduce(t)
finally:
    print(f"rank 0 stopped waiting after {time.monotonic() - start:.1f} s", flush=True)
