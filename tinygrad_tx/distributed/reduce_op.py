"""ReduceOp: how a reduction combines the ranks' tensors, with torch.distributed's names."""
import enum


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"          # the sum divided by the world size: floating-point tensors only
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"

    def __repr__(self):
        return f"ReduceOp.{self.name}"


def check_reduce_op(op, dtype, op_name):
    """The op as a ReduceOp, refusing what cannot be computed: an unknown op, AVG of integers."""
    if not isinstance(op, ReduceOp):
        raise ValueError(f"{op_name}: op must be a ReduceOp (SUM, AVG, PRODUCT, MAX, MIN), got {op!r}")
    if op is ReduceOp.AVG and not dtype.is_floating:
        raise ValueError(f"{op_name}: ReduceOp.AVG needs a floating-point tensor, got {dtype}; use SUM and divide")
    return op
