"""The launcher: torchrun's environment for each rank, its refusals, and two 'machines' joining into one run."""
import os
import subprocess
import sys

import pytest

from launch import ROOT, WORKERS, free_port
from tinygrad_tx.distributed.environment import launched_world_size, read_environment
from tinygrad_tx.distributed.run import build_parser, main, rank_environments


def test_each_rank_gets_torchruns_environment():
    environments = rank_environments(nproc_per_node=2, nnodes=2, node_rank=1, master_addr="10.0.0.1",
                                     master_port=1234)
    assert [e["RANK"] for e in environments] == ["2", "3"]
    assert [e["LOCAL_RANK"] for e in environments] == ["0", "1"]
    assert {e["WORLD_SIZE"] for e in environments} == {"4"} and {e["GROUP_RANK"] for e in environments} == {"1"}
    assert read_environment(environments[1]).rank == 3 and read_environment(environments[1]).master_port == 1234
    assert launched_world_size(environments[0]) == 4 and launched_world_size({"PMI_SIZE": "3"}) == 3
    assert launched_world_size({}) == 1


def test_parses_torchruns_flags_and_the_program_with_its_own():
    args = build_parser().parse_args(["--nproc_per_node", "2", "-m", "tinygrad_tx.train", "--max-iters", "5"])
    assert (args.nproc_per_node, args.module, args.program, args.program_args) == \
        (2, True, "tinygrad_tx.train", ["--max-iters", "5"])
    with pytest.raises(ValueError, match="WORLD_SIZE='x' must be an integer"):
        read_environment({"WORLD_SIZE": "x"})


def test_refuses_a_node_rank_outside_the_run(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--nnodes", "2", "--node-rank", "2", "x.py"])
    assert exit_info.value.code == 2 and "--node-rank 2 must be in 0..1" in capsys.readouterr().err


def test_two_machines_join_into_one_run():
    pytest.importorskip("mpi4py")
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": ROOT}
    launchers = [subprocess.Popen([sys.executable, "-m", "tinygrad_tx.distributed.run", "--nnodes", "2",
                                   "--node-rank", str(node), "--master-port", str(port),
                                   os.path.join(WORKERS, "two_nodes.py")], cwd=ROOT, env=environment,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for node in (1, 0)]  # node 1 first: it waits for node 0
    outputs = [launcher.communicate(timeout=120)[0] for launcher in launchers]
    assert [launcher.returncode for launcher in launchers] == [0, 0], outputs
    assert "rank 1 of 2: sum 3.0" in outputs[0] and "rank 0 of 2: sum 3.0" in outputs[1]
