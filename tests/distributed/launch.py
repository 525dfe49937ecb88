"""Run a worker script on several ranks through tinygrad_tx.distributed.run, as a user would."""
import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_ranks(worker, *args, nproc=2, timeout=120, env=None):
    """CompletedProcess of `python -m tinygrad_tx.distributed.run --nproc-per-node nproc workers/worker args`;
    a worker not ending in .py is a module (-m)."""
    pytest.importorskip("mpi4py", reason="the distributed tests need mpi4py and an MPI (pip install mpich)")
    program = [os.path.join(WORKERS, worker)] if worker.endswith(".py") else ["-m", worker]
    command = [sys.executable, "-m", "tinygrad_tx.distributed.run", "--nproc-per-node", str(nproc),
               "--master-port", str(free_port()), *program, *map(str, args)]
    environment = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout)


def check(result):
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout
