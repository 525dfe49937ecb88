"""What the environment says about the run this process belongs to: torchrun's variables, or MPI's.

tinygrad_tx.distributed.run sets torchrun's: RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
MASTER_PORT. Under a plain `mpiexec -n N`, only MPI's own are there (MPICH's PMI_RANK and PMI_SIZE, Open
MPI's OMPI_COMM_WORLD_RANK and OMPI_COMM_WORLD_SIZE), and init_process_group takes the ranks from MPI.
"""
import os
from dataclasses import dataclass


@dataclass
class Environment:
    rank: int = None
    local_rank: int = None
    world_size: int = None
    master_addr: str = None
    master_port: int = None
    under_mpiexec: bool = False


def read_environment(environ=None):
    environ = os.environ if environ is None else environ
    return Environment(rank=_integer(environ, "RANK"), local_rank=_integer(environ, "LOCAL_RANK"),
                       world_size=_integer(environ, "WORLD_SIZE"), master_addr=environ.get("MASTER_ADDR") or None,
                       master_port=_integer(environ, "MASTER_PORT"),
                       under_mpiexec=any(name in environ for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE",
                                                                       "PMIX_RANK")))


def launched_world_size(environ=None):
    """How many processes this run was started with (1 for a plain `python train.py`), read before any
    process group exists: a training program decides from it whether to run data-parallel."""
    environ = os.environ if environ is None else environ
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        value = _integer(environ, name)
        if value is not None:
            return value
    return 1


def _integer(environ, name):
    text = environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"the environment variable {name}={text!r} must be an integer") from None
