"""Every collective on 2+ ranks against NumPy, in float32, float16 and bfloat16; a mismatch between the ranks'
calls is named on every rank; NcclCollectives' logic on a stand-in NCCL (fake_nccl.py)."""
import os
import sys

import numpy as np

import tinygrad_tx as tg
import tinygrad_tx.distributed as dist
from tinygrad_tx.distributed.nccl_collectives import NcclCollectives
from tinygrad_tx.distributed.process_group import default_group

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fake_nccl import FakeNcclModule, HostRuntime  # noqa: E402

dist.init_process_group("gloo", timeout=60)
rank, world = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and dist.get_backend() == "gloo"
DTYPES = {"float32": (tg.float32, 0), "float16": (tg.float16, 1e-3), "bfloat16": (tg.bfloat16, 1e-2)}


def values_of(r, shape=(3, 4), seed=0):
    """What rank r contributes: the same on every rank, so each can compute the expected result itself."""
    return np.random.default_rng([seed, r]).uniform(-2, 2, size=shape).astype(np.float32)


def tensor(values, dtype):
    return tg.tensor(values).to(dtype)


def close(actual, expected, tolerance):
    actual = actual.float().numpy() if isinstance(actual, tg.Tensor) else actual
    assert np.allclose(actual, expected, rtol=tolerance, atol=tolerance), (actual, expected)


everyone = np.stack([values_of(r) for r in range(world)])
for name, (dtype, tolerance) in DTYPES.items():
    rounded = tensor(everyone, dtype).float().numpy()  # each rank's values as that dtype holds them
    for op, expected in [(dist.ReduceOp.SUM, rounded.sum(0)), (dist.ReduceOp.AVG, rounded.mean(0)),
                         (dist.ReduceOp.MAX, rounded.max(0)), (dist.ReduceOp.MIN, rounded.min(0)),
                         (dist.ReduceOp.PRODUCT, rounded.prod(0))]:
        t = tensor(values_of(rank), dtype)
        version = t._version.value
        dist.all_reduce(t, op=op)
        assert t.dtype is dtype and t._version.value == version + 1
        close(t, expected, tolerance)
    for src in range(world):
        t = tensor(values_of(rank), dtype)
        dist.broadcast(t, src=src)
        assert np.array_equal(t.float().numpy(), rounded[src])  # moved bit for bit
    gathered = [tg.zeros(3, 4, dtype=dtype) for _ in range(world)]
    dist.all_gather(gathered, tensor(values_of(rank), dtype))
    assert all(np.array_equal(g.float().numpy(), rounded[r]) for r, g in enumerate(gathered))
    whole = tg.zeros(3 * world, 4, dtype=dtype)
    dist.all_gather_into_tensor(whole, tensor(values_of(rank), dtype))
    assert np.array_equal(whole.float().numpy(), rounded.reshape(3 * world, 4))
    pieces = np.stack([values_of(r, (world, 2, 4), seed=1) for r in range(world)])  # rank, piece, ...
    pieces_rounded = tensor(pieces, dtype).float().numpy()
    output = tg.zeros(2, 4, dtype=dtype)
    dist.reduce_scatter(output, [tensor(piece, dtype) for piece in pieces[rank]], op=dist.ReduceOp.SUM)
    close(output, pieces_rounded[:, rank].sum(0), tolerance)
    output = tg.zeros(2, 4, dtype=dtype)
    dist.reduce_scatter_tensor(output, tensor(pieces[rank].reshape(world * 2, 4), dtype), op=dist.ReduceOp.AVG)
    close(output, pieces_rounded[:, rank].mean(0), tolerance)
print(f"rank {rank}: every collective agrees with NumPy in {', '.join(DTYPES)}")

# a view that is not contiguous is written through to its base; async_op hands back the Work
base = tg.tensor(values_of(rank))
view = base.t()
work = dist.all_reduce(view, async_op=True)
work.wait()
assert work.is_completed()
close(base, everyone.sum(0), 1e-6)
integers = tg.tensor([rank + 1, 10 * (rank + 1)])
dist.all_reduce(integers, op=dist.ReduceOp.MAX)
assert integers.tolist() == [world, 10 * world] and integers.dtype is tg.int64
dist.barrier()

# the ranks' calls differ: every rank says how, and the group goes on working
for call in ("shape", "dtype", "op"):
    try:
        if call == "shape":
            dist.all_reduce(tg.zeros(2, 3 + rank))
        elif call == "dtype":
            dist.all_reduce(tg.zeros(2, dtype=tg.float32 if rank == 0 else tg.float16))
        elif rank == 0:
            dist.broadcast(tg.zeros(2), src=0)
        else:
            dist.all_reduce(tg.zeros(2))
        raise AssertionError(f"a {call} mismatch went unnoticed")
    except dist.CollectiveMismatch as error:
        message = str(error)
        expected = {"shape": ["rank 0 called all_reduce(shape (2, 3) float32", "rank 1 called all_reduce(shape (2, 4)"],
                    "dtype": ["(2,) float32", "(2,) float16"], "op": ["rank 0 called broadcast", "rank 1 called all_reduce"]}
        assert all(part in message for part in expected[call]), message
        print(f"rank {rank}: {call} mismatch: {message}")
t = tg.ones(2)
dist.all_reduce(t)
assert t.tolist() == [world, world]
for bad, error in [(lambda: dist.broadcast(tg.zeros(2), src=world), ValueError),
                   (lambda: dist.all_reduce(tg.zeros(2, dtype=tg.int64), op=dist.ReduceOp.AVG), ValueError),
                   (lambda: dist.all_gather([tg.zeros(2)], tg.zeros(2)), ValueError),
                   (lambda: dist.all_reduce(np.zeros(2)), TypeError)]:
    try:
        bad()
        raise AssertionError("bad arguments were accepted")
    except error:
        pass

# NcclCollectives on the stand-in NCCL: in-place reductions, raw-byte moves, bfloat16 with and without NCCL's
group = default_group("test")
for with_bfloat16 in (True, False):
    nccl = FakeNcclModule(group.comm.Dup(), with_bfloat16)
    collectives = NcclCollectives(group, group.comm, HostRuntime(nccl), device_index=0)
    for name in ("float32", "float16", "bfloat16"):
        array = tg.tensor(values_of(rank)).to(DTYPES[name][0]).array.copy()
        rounded = tensor(everyone, DTYPES[name][0]).float().numpy()
        collectives.all_reduce(array, None, dist.ReduceOp.AVG).wait()
        close(array.astype(np.float32), rounded.mean(0), DTYPES[name][1])
        array = tg.tensor(values_of(rank)).to(DTYPES[name][0]).array.copy()
        collectives.broadcast(array, None, 1).wait()
        assert np.array_equal(array.astype(np.float32), rounded[1])
        work = collectives.all_gather(tg.tensor(values_of(rank)).to(DTYPES[name][0]).array, None)
        work.wait()
        assert np.array_equal(work.result.astype(np.float32), rounded)
        stacked = tg.tensor(np.stack([values_of(rank)] * world)).to(DTYPES[name][0]).array
        work = collectives.reduce_scatter(stacked, None, dist.ReduceOp.MAX)
        work.wait()
        close(work.result.astype(np.float32), rounded.max(0), DTYPES[name][1])
    reduced_types = {call[2] for call in nccl.calls if call[0] in ("allReduce", "reduceScatter")}
    assert reduced_types == ({6, 7, 9} if with_bfloat16 else {6, 7}), reduced_types  # no bfloat16: in float32
    assert all(call[2] == 1 for call in nccl.calls if call[0] in ("broadcast", "allGather"))  # raw bytes
    assert ("broadcast", 3 * 4 * 2, 1, 1) in nccl.calls  # a 16-bit (3, 4) array: 24 bytes from rank 1
    collectives.destroy()
print(f"rank {rank}: NcclCollectives on the stand-in NCCL agree with NumPy")
dist.destroy_process_group()
assert not dist.is_initialized()
