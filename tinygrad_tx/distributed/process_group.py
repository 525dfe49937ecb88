"""The process group: which process is which rank, the communicators, and init_process_group to make it.

One group per process (the default group, as torch.distributed's): MPI carries CPU tensors and the
start-up, NCCL carries GPU tensors when the backend is "nccl" (or unnamed and a GPU is there).

    backend   CPU tensors            GPU tensors
    "gloo"    MPI                    MPI, through a host copy
    "mpi"     MPI                    MPI, through a host copy
    "nccl"    refused                NCCL (CuPy's bindings)
    None      MPI                    NCCL
"""
import atexit
import datetime
import socket

import numpy as np

from .environment import read_environment
from .errors import CollectiveMismatch, DistError
from .mpi_collectives import MpiCollectives
from .rendezvous import world_communicator
from .watchdog import Watchdog
from .work import Work

BACKENDS = ("gloo", "mpi", "nccl")
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
_DESCRIPTION_BYTES = 200  # what each rank says it is calling, for agree()

_default_group = None
_broken_groups = []  # groups that hit a timeout or a dead rank: MPI_Finalize is not safe after them


class ProcessGroup:
    def __init__(self, backend, comm, local_rank, timeout_s):
        self.backend = backend
        self.comm = comm
        self.rank, self.world_size = comm.Get_rank(), comm.Get_size()
        self.local_rank = local_rank
        self.timeout_s = timeout_s
        self.broken = None  # why the group can no longer be used, after a timeout or a dead rank
        hostnames = comm.allgather(socket.gethostname())
        # rank 0's address for the watchdog's connections: loopback when every rank is on rank 0's machine
        host = "127.0.0.1" if len(set(hostnames)) == 1 else socket.gethostbyname(hostnames[0])
        self.watchdog = Watchdog(comm, self.rank, self.world_size, host, timeout_s)
        self.mpi = MpiCollectives(self, comm)
        self._nccl = None

    # torch's ProcessGroup spells these as methods
    def size(self):
        return self.world_size

    def collectives_for(self, tensor, op_name):
        """The library that carries this tensor: NCCL for a GPU tensor where the backend has it, else MPI."""
        self.check_usable(op_name)
        if tensor.is_cuda and self.backend in ("nccl", None):
            return self.nccl(tensor)
        if not tensor.is_cuda and self.backend == "nccl":
            raise RuntimeError(f"{op_name}: the process group's backend is nccl, which carries GPU tensors only, "
                               f"and this tensor is on {tensor.device}; move it to the GPU, or use "
                               "init_process_group('gloo') for CPU tensors")
        return self.mpi

    def check_usable(self, op_name):
        if self.broken:
            raise DistError(f"{op_name}: the process group is unusable: {self.broken}")

    def nccl(self, tensor):
        if self._nccl is None:
            from .nccl_collectives import CupyRuntime, NcclCollectives
            self._nccl = NcclCollectives(self, self.comm, CupyRuntime(), tensor.array.device.id)
        return self._nccl

    def agree(self, op_name, description):
        """Check that every rank is making the same call (op, shapes, dtypes): a mismatch raises on every rank,
        naming what each has, before any data moves (MPI would read past a short buffer or wait forever)."""
        self.check_usable(op_name)
        if self.world_size == 1:
            return
        text = description.encode()[:_DESCRIPTION_BYTES].ljust(_DESCRIPTION_BYTES, b"\0")
        mine = np.frombuffer(text, np.uint8).copy()
        everyone = np.empty(self.world_size * _DESCRIPTION_BYTES, np.uint8)
        Work(op_name, self, self.comm.Iallgather(mine, everyone).Test).wait()
        said = [everyone[i * _DESCRIPTION_BYTES:(i + 1) * _DESCRIPTION_BYTES].tobytes().rstrip(b"\0").decode()
                for i in range(self.world_size)]
        if len(set(said)) > 1:
            ranks_by_call = {}
            for rank, call in enumerate(said):
                ranks_by_call.setdefault(call, []).append(rank)
            listing = "; ".join(f"{_ranks_text(ranks)} called {call}" for call, ranks in ranks_by_call.items())
            raise CollectiveMismatch(f"{op_name}: the ranks' calls do not match: {listing}")

    def abort(self, reason):
        """After a timeout or a dead rank: refuse further collectives, and skip MPI_Finalize at exit (it would
        wait for the ranks that are gone)."""
        self.broken = reason
        _broken_groups.append(self)
        if self._nccl is not None:
            self._nccl.abort()

    def close(self):
        self.watchdog.close()
        if self._nccl is not None and not self.broken:
            self._nccl.destroy()
        if not self.broken:
            self.comm.Free()


def _ranks_text(ranks):
    return f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the run's processes into the default process group, as torch.distributed.init_process_group.

    The ranks come from torchrun's environment (RANK, WORLD_SIZE, ..., which tinygrad_tx.distributed.run
    sets) or, under a plain mpiexec, from MPI. world_size and rank, when given, must agree with them.
    init_method may be None, "env://", or "tcp://ADDR:PORT" (MASTER_ADDR and MASTER_PORT). timeout
    (a timedelta or seconds, 30 minutes by default) bounds every collective: past it, the collective raises.
    """
    global _default_group
    if _default_group is not None:
        raise ValueError("init_process_group: trying to initialize the default process group twice; call "
                         "destroy_process_group() first")
    backend = _check_backend(backend)
    if store is not None:
        raise NotImplementedError("init_process_group: store= is not supported; the processes meet through MPI "
                                  "(and MASTER_ADDR:MASTER_PORT across machines)")
    environment = read_environment()
    _apply_init_method(init_method, environment)
    timeout_s = (timeout or DEFAULT_TIMEOUT).total_seconds() if not isinstance(timeout, (int, float)) \
        else float(timeout)
    if timeout_s <= 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout!r}")
    MPI = _import_mpi()
    comm = world_communicator(MPI, environment, timeout_s)
    for name, given, actual in (("world_size", world_size, comm.Get_size()), ("rank", rank, comm.Get_rank())):
        if given not in (-1, None) and given != actual:
            raise ValueError(f"init_process_group: {name}={given} was given, but the run's {name} is {actual} "
                             "(from the environment or MPI)")
    local_rank = environment.local_rank
    if local_rank is None:  # under mpiexec: the rank among the processes sharing this machine
        local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    _default_group = ProcessGroup(backend, comm, local_rank, timeout_s)
    _skip_finalize_after_uncaught_exceptions()
    return None


def _skip_finalize_after_uncaught_exceptions():
    """A rank ending with an exception must exit at once, so that the others notice: MPI_Finalize would make it
    wait for them, while they wait for it in a collective."""
    import sys
    previous = sys.excepthook

    def excepthook(kind, value, traceback):
        _broken_groups.append(None)
        previous(kind, value, traceback)
    if getattr(previous, "__name__", "") != "excepthook" or previous.__module__ != __name__:
        sys.excepthook = excepthook


def _check_backend(backend):
    if backend is None:
        return None
    name = str(backend).lower()
    if name == "cpu:gloo,cuda:nccl":
        return None
    if name not in BACKENDS:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return name


def _apply_init_method(init_method, environment):
    if init_method in (None, "env://"):
        return
    if isinstance(init_method, str) and init_method.startswith("tcp://"):
        address, _, port = init_method[len("tcp://"):].rpartition(":")
        environment.master_addr, environment.master_port = address, int(port)
        return
    raise ValueError(f"init_process_group: init_method {init_method!r} is not supported; use 'env://' (the "
                     "default) or 'tcp://ADDR:PORT'")


def _import_mpi():
    try:
        import mpi4py
    except ImportError:
        raise ImportError("tinygrad_tx.distributed needs MPI: pip install \"tinygrad_tx[distributed]\" (mpi4py and "
                          "the mpich wheel)") from None
    mpi4py.rc.finalize = False  # finalized at exit by _finalize below, unless a rank died
    from mpi4py import MPI
    return MPI


@atexit.register
def _finalize():
    """MPI_Finalize at exit, unless the group broke: with a rank gone it could wait forever."""
    import sys
    if "mpi4py.MPI" not in sys.modules:
        return
    MPI = sys.modules["mpi4py.MPI"]
    group = _default_group
    if _broken_groups or (group is not None and group.watchdog.dead_rank is not None):
        return
    if MPI.Is_initialized() and not MPI.Is_finalized():
        MPI.Finalize()


def default_group(op_name, group=None):
    if group is not None:
        return group
    if _default_group is None:
        raise ValueError(f"{op_name}: the default process group has not been initialized; call "
                         "tinygrad_tx.distributed.init_process_group() first")
    return _default_group


def destroy_process_group(group=None):
    """Leave the run: the others will not take this rank's exit for a failure."""
    global _default_group
    group = default_group("destroy_process_group", group)
    group.close()
    if group is _default_group:
        _default_group = None


def is_initialized():
    return _default_group is not None


def is_available():
    """Whether tinygrad_tx.distributed can run here: it needs mpi4py (and an MPI library, e.g. the mpich wheel)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def get_rank(group=None):
    return default_group("get_rank", group).rank


def get_world_size(group=None):
    return default_group("get_world_size", group).world_size


def get_backend(group=None):
    backend = default_group("get_backend", group).backend
    return "cpu:gloo,cuda:nccl" if backend is None else backend
