"""The errors a process group raises, with torch.distributed's names where it has them."""


class DistError(RuntimeError):
    """Something went wrong in a distributed run."""


class DistBackendError(DistError):
    """A collective could not complete: it timed out, or the communication library failed."""


class RankFailure(DistBackendError):
    """A rank of the process group died or left while the others still needed it."""


class CollectiveMismatch(DistError):
    """The ranks called different collectives, or the same one with tensors of different shapes or dtypes."""
