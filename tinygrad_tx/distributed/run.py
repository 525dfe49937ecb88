"""Start a data-parallel run, as torchrun does:

    python -m tinygrad_tx.distributed.run --nproc-per-node 2 train.py --its --own --flags
    python -m tinygrad_tx.distributed.run --nproc-per-node 2 -m tinygrad_tx.train --preset shakespeare-char-cpu

Each process gets torchrun's environment: RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK (the
node), MASTER_ADDR and MASTER_PORT. On several machines, run the same command on each with --nnodes M,
--node-rank K (0 on the machine of MASTER_ADDR) and the same --master-addr and --master-port.

Each process is started by MPI's mpiexec (from the mpich wheel: pip install "tinygrad_tx[distributed]"), and
init_process_group joins them into one MPI communicator. When a process fails, this program says which rank
and how, gives the others a few seconds to stop by themselves (their collectives raise, naming that rank),
then stops them, and exits with the failed rank's status. As torchrun, it sets OMP_NUM_THREADS=1 for several
processes per machine unless it is set.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

GRACE_S = 10  # after a rank fails, how long the others have to stop by themselves


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinygrad_tx.distributed.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc-per-node", "--nproc_per_node", type=_positive, default=1,
                        help="processes on this machine (one per GPU, or per CPU socket)")
    parser.add_argument("--nnodes", type=_positive, default=1, help="machines in the run")
    parser.add_argument("--node-rank", "--node_rank", type=int, default=0, help="this machine's index, 0..nnodes-1")
    parser.add_argument("--master-addr", "--master_addr", default="127.0.0.1",
                        help="address of the machine of node rank 0 (every machine must reach it)")
    parser.add_argument("--master-port", "--master_port", type=_positive, default=29500,
                        help="a free TCP port on that machine, for the machines to meet")
    parser.add_argument("--standalone", action="store_true", help="one machine (torchrun's flag; the default here)")
    parser.add_argument("-m", "--module", action="store_true", help="run the program as a module (python -m)")
    parser.add_argument("program", help="the script to run (or, with -m, the module)")
    parser.add_argument("program_args", nargs=argparse.REMAINDER, help="the program's own arguments")
    return parser


def _positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


def rank_environments(nproc_per_node, nnodes, node_rank, master_addr, master_port):
    """torchrun's variables for each process this machine starts."""
    world_size = nproc_per_node * nnodes
    return [{"RANK": str(node_rank * nproc_per_node + local_rank), "LOCAL_RANK": str(local_rank),
             "WORLD_SIZE": str(world_size), "LOCAL_WORLD_SIZE": str(nproc_per_node), "GROUP_RANK": str(node_rank),
             "MASTER_ADDR": master_addr, "MASTER_PORT": str(master_port)} for local_rank in range(nproc_per_node)]


def rank_command(mpiexec, program):
    """Each rank is an MPI world of its own (`mpiexec -n 1`), and init_process_group joins the worlds into one
    (see rendezvous.py). This program then knows each rank's process: it can say which one failed, and how."""
    return [mpiexec, "-n", "1"] + program


def find_mpiexec():
    """mpiexec beside this Python (the mpich wheel installs it there), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("tinygrad_tx.distributed.run: mpiexec not found; install MPI with "
                         "pip install \"tinygrad_tx[distributed]\" (mpi4py and the mpich wheel)")
    return found


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.node_rank < args.nnodes:
        parser.error(f"--node-rank {args.node_rank} must be in 0..{args.nnodes - 1} (--nnodes {args.nnodes})")
    program = [sys.executable] + (["-m"] if args.module else []) + [args.program] + args.program_args
    environments = rank_environments(args.nproc_per_node, args.nnodes, args.node_rank, args.master_addr,
                                     args.master_port)
    if args.nproc_per_node > 1 and "OMP_NUM_THREADS" not in os.environ:
        for environment in environments:  # as torchrun: processes sharing a machine would fight for its cores
            environment["OMP_NUM_THREADS"] = "1"
    mpiexec = find_mpiexec()
    processes = [subprocess.Popen(rank_command(mpiexec, program), env={**os.environ, **environment})
                 for environment in environments]
    return supervise(processes, [int(environment["RANK"]) for environment in environments])


def supervise(processes, ranks, grace_s=GRACE_S):
    """Wait for every process. When one fails, say which rank and how, give the others grace_s seconds to
    notice (their collectives raise, naming that rank) and stop them after that. Return the first failure's
    exit status, or 0."""
    failures = {}  # rank -> exit status, in the order they were seen
    deadline = None
    try:
        while any(process.poll() is None for process in processes):
            if _report_failures(processes, ranks, failures, grace_s) and deadline is None:
                deadline = time.monotonic() + grace_s
            if deadline is not None and time.monotonic() > deadline:
                _stop(processes)
            time.sleep(0.05)
    except KeyboardInterrupt:  # Ctrl-C reached every rank too: they save a checkpoint and stop on their own
        for process in processes:
            process.wait()
    _report_failures(processes, ranks, failures, grace_s)  # those that ended since the last look, all at once
    return next(iter(failures.values()), 0)


def _report_failures(processes, ranks, failures, grace_s):
    """Say which ranks failed since the last call, and how (each of them: a rank that failed and the ranks that
    stopped because of it can end within one look); -> whether any failed so far."""
    for process, rank in zip(processes, ranks):
        status = process.poll()
        if status not in (None, 0) and rank not in failures:
            then = "" if failures else f"; stopping the other ranks within {grace_s:g} s"
            failures[rank] = status
            print(f"tinygrad_tx.distributed.run: rank {rank} (pid {process.pid}) {_how_it_ended(status)}{then}",
                  file=sys.stderr, flush=True)
    return bool(failures)


def _how_it_ended(status):
    """mpiexec reports a rank killed by signal N as exit status N; Python's subprocess as -N."""
    if status < 0 or status in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGTERM, signal.SIGBUS):
        number = abs(status)
        return f"was killed by signal {number} ({signal.Signals(number).name})"
    return f"exited with status {status}"


def _stop(processes):
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    sys.exit(main())
