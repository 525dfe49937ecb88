"""Cross-entropy of (N, C) logits against (N,) class indices: log_softmax and NLL in one pass.

loss_i = -(1 - eps) log p[i, target_i] - eps/C sum_c log p[i, c]   (eps: label smoothing)
Rows whose target is ignore_index contribute nothing and are not counted by 'mean'.
"""
from ..dtype import float32, int64
from .fused import AtForwardValues, FusedFunction


class CrossEntropy(FusedFunction):
    free_arguments = (0,)  # see composed_arguments; the kernel path saves the logits for its own backward

    @staticmethod
    def computes_bfloat16_itself(logits, target, ignore_index, reduction, label_smoothing):
        return _kernels_for(logits) is not None  # the kernel reads bfloat16 and sums in float32

    @staticmethod
    def forward(ctx, logits, target, ignore_index, reduction, label_smoothing):
        backend, x = logits.backend, logits.array
        n_rows, n_classes = x.shape
        ctx.backend, ctx.kernels = backend, _kernels_for(logits)
        if ctx.kernels is not None:
            # one pass per row that keeps the row's logsumexp instead of the (N, C) log-probabilities
            losses, lse = ctx.kernels.cross_entropy_forward(x, target.array, ignore_index, label_smoothing)
            valid = target.array != ignore_index
            # the kernel's backward reads the logits: the caller's (a GPU saves the memory of a copy), or a copy
            # (the CPU's kernels, as PyTorch's CPU op, let the caller edit the logits after the forward)
            ctx.logits = backend.copy(x) if getattr(ctx.kernels, "copies_logits", False) else None
            ctx.save_for_backward(logits if ctx.logits is None else None, target)
            ctx.saved_arrays = (lse, valid, target.array)
            # the float32 losses summed in float32, then rounded once to the logits' dtype
            return backend.astype(_reduce(ctx, backend, losses, valid, reduction), logits.dtype)
        ctx.kernels = None
        ctx.save_for_backward(target)  # as PyTorch: the logits may change after the forward, the targets not
        shifted = x - backend.max(x, 1, True)
        log_probs = shifted - backend.log(backend.sum(backend.exp(shifted), 1, True))
        valid = target.array != ignore_index
        safe_target = backend.where(valid, target.array, 0)
        picked = backend.take_along_axis(log_probs, safe_target[:, None], 1)[:, 0]
        losses = -(1 - label_smoothing) * picked
        if label_smoothing:
            losses = losses - label_smoothing / n_classes * backend.sum(log_probs, 1, False)
        losses = losses * valid
        ctx.saved_arrays = (log_probs, valid, safe_target)
        return _reduce(ctx, backend, losses, valid, reduction)

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dloss_i/dlogits_i = softmax_i - (1 - eps) onehot(target_i) - eps/C
        log_probs, valid, safe_target = ctx.saved_arrays
        logits, _, ignore_index, reduction, label_smoothing = ctx.arguments
        backend = ctx.backend
        if ctx.kernels is not None:  # saved: each row's logsumexp and the raw targets
            lse, target = log_probs, safe_target
            scale = backend.astype(grad_output, float32) * valid  # 1 / n_valid unrounded, even for 16-bit logits
            if reduction == "mean":
                scale = scale / max(ctx.n_valid, 1)
            scale = backend.broadcast_to(scale, valid.shape)
            logits_array = logits.array if ctx.logits is None else ctx.logits
            grad = ctx.kernels.cross_entropy_backward(logits_array, target, lse, scale, ignore_index, label_smoothing)
            return grad, None, None, None, None
        n_rows, n_classes = log_probs.shape
        grad = backend.exp(log_probs)
        if label_smoothing:
            grad = grad - label_smoothing / n_classes
        rows = backend.arange(0, n_rows, 1, int64)
        grad[rows, safe_target] -= 1 - label_smoothing
        scale = grad_output * valid  # grad_output: one value per row for 'none', a scalar otherwise
        if reduction == "mean":
            scale = scale / max(ctx.n_valid, 1)
        grad *= scale.reshape(-1, 1)
        return grad, None, None, None, None

    @staticmethod
    def composed_arguments(ctx):
        """The CPU path keeps log_softmax(logits): a row-shifted copy of the logits that cross-entropy cannot tell
        from them (log_softmax ignores a shift per row). Differentiating at it instead of at the logits lets the
        logits change in place after the forward, as PyTorch allows."""
        logits, *rest = ctx.arguments
        if ctx.kernels is not None:
            return ctx.arguments if ctx.logits is None else (AtForwardValues.apply(logits, ctx.logits), *rest)
        return (AtForwardValues.apply(logits, ctx.saved_arrays[0]), *rest)

    def _release(self):
        super()._release()
        self.logits = None

    @staticmethod
    def composed(ctx, logits, target, ignore_index, reduction, label_smoothing):
        n_classes = logits.shape[1]
        log_probs = logits.log_softmax(1)
        valid = target != ignore_index
        safe_target = target.masked_fill(~valid, 0)
        losses = -(1 - label_smoothing) * log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)
        if label_smoothing:
            losses = losses - label_smoothing / n_classes * log_probs.sum(1)
        losses = losses * valid.to(logits.dtype)
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        return losses.sum() / valid.sum().to(logits.dtype)


def _kernels_for(logits):
    kernels = logits.backend.kernels
    return kernels if kernels is not None and kernels.supports(logits.array) else None


def _reduce(ctx, backend, losses, valid, reduction):
    """Per-row losses -> the requested reduction; 'mean' divides by the rows not ignored."""
    if reduction == "none":
        return losses
    total = backend.sum(losses, None, False)
    if reduction == "sum":
        return total
    ctx.n_valid = int(backend.sum(valid, None, False))
    return total / losses.dtype.type(ctx.n_valid) if ctx.n_valid else total * float("nan")
