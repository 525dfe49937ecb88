"""How the processes of a run find each other: one MPI communicator over all of them, ordered by rank.

Three ways a run can start:
- `mpiexec -n N python train.py`: MPI's own world is the run; the ranks are MPI's.
- `python -m tinygrad_tx.distributed.run --nproc-per-node N ...` on one machine: the launcher runs one
  mpiexec whose processes carry torchrun's environment (RANK, WORLD_SIZE, ...); MPI's world is the run,
  reordered so that MPI's ranks are the RANKs.
- the launcher on each of several machines (--nnodes M): each machine's mpiexec makes a world of its
  own processes, and the worlds join into one. The world holding RANK 0 opens an MPI port
  (MPI_Open_port) and tells its name to whoever connects to MASTER_ADDR:MASTER_PORT over TCP; each other
  world connects to that port (MPI_Comm_connect) and all merge, until WORLD_SIZE processes are in.
"""
import socket
import threading
import time

from .errors import DistError


def world_communicator(MPI, environment, timeout_s):
    """An MPI intracommunicator over every process of the run, in which each process's rank is its RANK."""
    world = MPI.COMM_WORLD
    world_size = environment.world_size
    if world_size is None or world_size == world.Get_size() and environment.rank is None:
        return world.Dup()
    if environment.rank is None:
        raise DistError(f"init_process_group: WORLD_SIZE={world_size} is set but RANK is not; set both (as "
                        "tinygrad_tx.distributed.run does) or neither (mpiexec's ranks are used then)")
    if world_size < world.Get_size():
        raise DistError(f"init_process_group: WORLD_SIZE={world_size}, but MPI started {world.Get_size()} "
                        "processes together")
    if world_size == world.Get_size():
        joined = world
    elif world.Get_size() == 1 and not environment.under_mpiexec:
        raise DistError(f"init_process_group: WORLD_SIZE={world_size} says this is one of several processes, "
                        "but they were not started by MPI (torchrun's processes cannot join an MPI job); start "
                        "them with python -m tinygrad_tx.distributed.run or with mpiexec")
    else:
        joined = _join_worlds(MPI, world, environment, timeout_s)
    ranks = joined.allgather(environment.rank)
    if sorted(ranks) != list(range(world_size)):
        raise DistError(f"init_process_group: the processes' RANKs are {sorted(ranks)}; with WORLD_SIZE="
                        f"{world_size} each of 0..{world_size - 1} must appear once")
    return joined.Split(0, environment.rank)


def _join_worlds(MPI, local, environment, timeout_s):
    """Merge this machine's MPI world with the others' into one intracommunicator of WORLD_SIZE processes."""
    if environment.master_addr is None or environment.master_port is None:
        raise DistError("init_process_group: the run spans several MPI worlds (--nnodes > 1), and joining them "
                        "needs MASTER_ADDR and MASTER_PORT (the address of the machine running RANK 0)")
    holds_rank_0 = local.allreduce(environment.rank == 0, op=MPI.LOR)
    port = MPI.Open_port() if environment.rank == 0 else None
    server = _PortNameServer(port, environment.master_port) if port is not None else None
    try:
        if holds_rank_0:
            joined = local
        else:
            name = _ask_port_name(environment.master_addr, environment.master_port, timeout_s) \
                if local.Get_rank() == 0 else None
            name = local.bcast(name, root=0)
            joined = local.Connect(name, root=0).Merge(high=True)
        while joined.Get_size() < environment.world_size:  # every world joined so far accepts the next one
            root = joined.allgather(environment.rank).index(0)
            joined = joined.Accept(port or "", root=root).Merge(high=False)
    finally:
        if server is not None:
            server.close()
            MPI.Close_port(port)
    return joined


class _PortNameServer:
    """Answers every TCP connection to MASTER_PORT with the MPI port name, until closed."""

    def __init__(self, port_name, master_port):
        self.port_name = port_name.encode()
        try:
            self.listener = socket.create_server(("", master_port), reuse_port=False)
        except OSError as error:
            raise DistError(f"init_process_group: RANK 0 cannot listen on MASTER_PORT={master_port}: "
                            f"{error.strerror}; choose another --master-port") from None
        self.listener.settimeout(0.2)
        self.open = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.open:
            try:
                connection, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            with connection:
                connection.sendall(len(self.port_name).to_bytes(4, "big") + self.port_name)

    def close(self):
        self.open = False
        self.thread.join()
        self.listener.close()


def _ask_port_name(address, port, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((address, port), timeout=5) as connection:
                size = int.from_bytes(_receive(connection, 4), "big")
                return _receive(connection, size).decode()
        except OSError as error:  # rank 0 is not listening yet
            if time.monotonic() > deadline:
                raise DistError(f"init_process_group: could not reach RANK 0 at {address}:{port} within "
                                f"{timeout_s:g} s ({error}); is MASTER_ADDR right, and is node 0 started?") from None
            time.sleep(0.2)


def _receive(connection, size):
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the connection closed early")
        data += chunk
    return data
