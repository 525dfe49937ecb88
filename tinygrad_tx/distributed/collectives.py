"""The collectives on Tensors, with torch.distributed's names, arguments and in-place semantics.

Each one first checks its arguments here, then checks with the other ranks that all of them are making the
same call with tensors of the same shapes and dtypes (ProcessGroup.agree), then starts the transfer on the
library that carries the tensor's device. async_op=True returns the Work at once; otherwise it is waited for.
The tensors written in place get a new version, as after any in-place edit.
"""
from ..tensor import Tensor
from .process_group import default_group
from .reduce_op import ReduceOp, check_reduce_op


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Every rank's tensor becomes the reduction (sum, average, product, max or min) of all of them."""
    group = default_group("all_reduce", group)
    _check_tensor(tensor, "all_reduce", "tensor")
    op = check_reduce_op(op, tensor.dtype, "all_reduce")
    group.agree("all_reduce", f"all_reduce({_describe(tensor)}, {op!r})")
    work = group.collectives_for(tensor, "all_reduce").all_reduce(tensor.array, tensor.backend, op)
    return _run(work, async_op, written=[tensor])


def broadcast(tensor, src, group=None, async_op=False):
    """Rank src's tensor is copied into every rank's tensor."""
    group = default_group("broadcast", group)
    _check_tensor(tensor, "broadcast", "tensor")
    _check_rank(src, group, "broadcast", "src")
    group.agree("broadcast", f"broadcast({_describe(tensor)}, src={src})")
    work = group.collectives_for(tensor, "broadcast").broadcast(tensor.array, tensor.backend, src)
    return _run(work, async_op, written=[tensor])


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[r] receives rank r's tensor, on every rank."""
    group = default_group("all_gather", group)
    _check_tensor(tensor, "all_gather", "tensor")
    _check_outputs(tensor_list, group.world_size, tensor.shape, tensor, "all_gather", "tensor_list")
    group.agree("all_gather", f"all_gather({_describe(tensor)})")
    work = group.collectives_for(tensor, "all_gather").all_gather(tensor.array, tensor.backend)
    return _run(work, async_op, written=tensor_list,
                then=lambda gathered: [_write(out, gathered[r]) for r, out in enumerate(tensor_list)])


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """output_tensor (world_size * n, ...) receives every rank's input_tensor (n, ...) one after another."""
    group = default_group("all_gather_into_tensor", group)
    _check_tensor(input_tensor, "all_gather_into_tensor", "input_tensor")
    _check_tensor(output_tensor, "all_gather_into_tensor", "output_tensor")
    _check_stacked(output_tensor, input_tensor, group.world_size, "all_gather_into_tensor")
    group.agree("all_gather_into_tensor", f"all_gather_into_tensor({_describe(input_tensor)})")
    work = group.collectives_for(input_tensor, "all_gather_into_tensor").all_gather(input_tensor.array,
                                                                                     input_tensor.backend)
    return _run(work, async_op, written=[output_tensor],
                then=lambda gathered: _write(output_tensor, gathered.reshape(output_tensor.shape)))


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Rank r's output becomes the reduction of every rank's input_list[r]."""
    group = default_group("reduce_scatter", group)
    _check_tensor(output, "reduce_scatter", "output")
    op = check_reduce_op(op, output.dtype, "reduce_scatter")
    _check_outputs(input_list, group.world_size, output.shape, output, "reduce_scatter", "input_list")
    group.agree("reduce_scatter", f"reduce_scatter({_describe(output)}, {op!r})")
    stacked = output.backend.stack([piece.array for piece in input_list], 0)
    work = group.collectives_for(output, "reduce_scatter").reduce_scatter(stacked, output.backend, op)
    return _run(work, async_op, written=[output], then=lambda reduced: _write(output, reduced))


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """input (world_size * n, ...) is reduced over the ranks, and rank r keeps the r-th block of n rows."""
    group = default_group("reduce_scatter_tensor", group)
    _check_tensor(output, "reduce_scatter_tensor", "output")
    _check_tensor(input, "reduce_scatter_tensor", "input")
    op = check_reduce_op(op, output.dtype, "reduce_scatter_tensor")
    _check_stacked(input, output, group.world_size, "reduce_scatter_tensor")
    group.agree("reduce_scatter_tensor", f"reduce_scatter_tensor({_describe(output)}, {op!r})")
    stacked = input.backend.reshape(input.backend.contiguous(input.array), (group.world_size,) + tuple(output.shape))
    work = group.collectives_for(output, "reduce_scatter_tensor").reduce_scatter(stacked, output.backend, op)
    return _run(work, async_op, written=[output], then=lambda reduced: _write(output, reduced))


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has reached this call."""
    group = default_group("barrier", group)
    group.agree("barrier", "barrier()")
    return _run(group.mpi.barrier(), async_op, written=[])


# --- argument checks ----------------------------------------------------------------------------------------------
def _check_tensor(tensor, op_name, argument):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op_name}: {argument} must be a Tensor, got {type(tensor).__name__}")


def _check_rank(rank, group, op_name, argument):
    if not isinstance(rank, int) or not 0 <= rank < group.world_size:
        raise ValueError(f"{op_name}: {argument}={rank!r} is not a rank of this group (0..{group.world_size - 1})")


def _check_outputs(tensors, world_size, shape, like, op_name, argument):
    """A list of world_size tensors, each of this shape, dtype and device."""
    if not isinstance(tensors, (list, tuple)) or len(tensors) != world_size:
        count = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{op_name}: {argument} must be a list of world_size={world_size} tensors, got {count}")
    for position, tensor in enumerate(tensors):
        _check_tensor(tensor, op_name, f"{argument}[{position}]")
        if tensor.shape != shape or tensor.dtype is not like.dtype or tensor.device != like.device:
            raise ValueError(f"{op_name}: {argument}[{position}] is {_describe(tensor)} on {tensor.device}; every "
                             f"tensor must be {_describe(like)} on {like.device}")


def _check_stacked(whole, piece, world_size, op_name):
    """whole holds world_size pieces one after another along dim 0."""
    expected = (world_size * piece.shape[0],) + tuple(piece.shape[1:]) if piece.ndim else (world_size,)
    if tuple(whole.shape) != expected or whole.dtype is not piece.dtype or whole.device != piece.device:
        raise ValueError(f"{op_name}: with world_size={world_size} and a piece {_describe(piece)}, the whole tensor "
                         f"must be of shape {expected} {piece.dtype.name}; got {_describe(whole)}")


def _describe(tensor):
    return f"shape {tuple(tensor.shape)} {tensor.dtype.name}"


# --- finishing ------------------------------------------------------------------------------------------------
def _write(tensor, values):
    tensor.array[...] = values


def _run(work, async_op, written, then=None):
    """Wait for work now, or hand it back (async_op); either way, results land in `written` when it finishes."""
    finish = work._finish

    def finish_and_write():
        result = finish() if finish is not None else None
        if then is not None:
            then(result)
        for tensor in written:
            tensor._version.value += 1
        return result
    work._finish = finish_and_write
    if async_op:
        return work
    work.wait()
    return None
