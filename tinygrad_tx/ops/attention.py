"""Scaled dot-product attention, softmax(Q K^T * scale + mask) V, as one op.

Rows whose keys are all masked out produce zeros (and zero gradients) instead of NaN.
The CPU path keeps the (L, S) probability matrix for backward; the GPU kernel (attention.cu,
flash-attention style, for no mask or the causal mask) keeps only the output and each row's
logsumexp, and recomputes the probabilities blockwise in backward, and with them the dropout mask
(a RegeneratedDropout: the mask's place in the GPU's random stream, never an array).
"""
from ..autograd.function import tensor_class
from .dims import broadcast_shape
from .fused import AtForwardValues, FusedFunction
from .matmul import Layout, pytorch_copies
from .regenerated_dropout import RegeneratedDropout
from .softmax import Softmax


class ScaledDotProductAttention(FusedFunction):
    saves_output = True

    @staticmethod
    def forward(ctx, q, k, v, mask, dropout_keep, scale):
        # mask: None, a bool tensor (True = may attend) or a float tensor added to the scores
        # dropout_keep: None, a float tensor of 0 and 1/(1-p) drawn by the caller, or a RegeneratedDropout
        backend = q.backend
        ctx.backend, ctx.kernels = backend, backend.kernels
        causal = mask is not None and getattr(mask, "is_causal_mask", False)  # set by F.scaled_dot_product_attention
        # which edits after the forward are errors, as PyTorch's CPU attention: its fused kernel keeps q, k, v, a
        # float mask and the output; its other path keeps at most v (see _other_path_keeps_v), so there q, k, the
        # mask and the output may change; with no queries or no keys it keeps nothing. The fused kernel takes 4-D
        # inputs with unit last strides, v's width equal to the others', no dropout and no mask that needs a
        # gradient. (PyTorch asks for a unit stride even of a last dim of size 1, whose stride NumPy keeps
        # differently: such a dim counts as unit-strided here.)
        empty = k.shape[-2] == 0 or 0 in q.shape[:-1] or v.shape[-1] == 0  # no keys, or an empty output
        ctx.keeps_all = q.ndim == 4 and q.shape[:2] == k.shape[:2] == v.shape[:2] and dropout_keep is None \
            and 0 < q.shape[-1] == v.shape[-1] and not empty \
            and all(t.shape[-1] == 1 or t.array.strides[-1] == t.array.itemsize for t in (q, k, v)) \
            and not (mask is not None and mask.requires_grad)
        keeps_v = not ctx.keeps_all and not empty and _other_path_keeps_v(q, k, v, mask)
        if ctx.keeps_all:
            float_mask = mask if mask is not None and mask.dtype.is_floating else None
            ctx.save_for_backward(q, k, v, float_mask)
        else:
            ctx.save_for_backward(None, None, v if keeps_v else None)
        regenerated = isinstance(dropout_keep, RegeneratedDropout)
        if ctx.kernels is not None and (dropout_keep is None or regenerated) and (mask is None or causal) \
                and ctx.kernels.supports_attention(q.array, k.array, v.array):
            ctx.save_for_backward(q, k, v)  # the kernel's backward reads all three
            ctx.dropout = dropout_keep.kernel_arguments if regenerated else None
            out, lse = ctx.kernels.attention_forward(q.array, k.array, v.array, scale, causal, ctx.dropout)
            ctx.saved_arrays, ctx.causal = (out, lse), causal  # out: the kernel's own copy, not user-visible memory
            return backend.copy(out)
        ctx.kernels = None
        # heads split off by a transpose are strided; BLAS wants contiguous operands
        q_array, k_array, v_array = (backend.contiguous(t.array) for t in (q, k, v))
        # the inputs PyTorch keeps no reference to may be edited after the forward: backward reads our own copies
        # of them (composed_arguments, for create_graph=True, too). The causal mask is ours alone.
        free = () if ctx.keeps_all else (0, 1) if keeps_v else (0, 1, 2)
        if mask is not None and not causal and not (ctx.keeps_all and mask.dtype.is_floating):
            free += (3,)
        q_array, k_array, v_array = (backend.copy(a) if i in free and a is t.array else a
                                     for i, (a, t) in enumerate(((q_array, q), (k_array, k), (v_array, v))))
        mask_values = backend.copy(mask.array) if 3 in free else None
        if free:
            ctx.free_arguments = (0, 1, 2, 3) if empty else free  # with no elements, nothing's values matter
        scores = backend.matmul(q_array, _transposed(backend, k_array))
        scores *= scale
        if mask is not None:
            if mask.dtype.is_floating:
                scores = scores + mask.array
            else:
                scores = backend.where(mask.array, scores, -float("inf"))
        row_max = backend.max(scores, -1, True) if scores.shape[-1] else backend.full(scores.shape[:-1] + (1,), 0,
                                                                                          q.dtype)  # no keys
        row_max = backend.where(backend.isfinite(row_max), row_max, 0)  # fully masked row: avoid inf - inf
        exps = backend.exp(scores - row_max)
        totals = backend.sum(exps, -1, True)
        probs = exps / backend.where(totals > 0, totals, 1)
        ctx.keep = _keep_values(dropout_keep)
        used = probs * ctx.keep if dropout_keep is not None else probs
        ctx.saved_arrays = (probs, used, q_array, k_array, v_array, mask_values)
        ctx.backend = backend
        return backend.matmul(used, v_array)

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # O = P' V, P' = P * keep, P = softmax(S), S = Q K^T * scale
        dropout_keep, scale = ctx.arguments[4:]
        if ctx.keeps_all:
            ctx.output  # raises if the output was edited in place
        if ctx.kernels is not None:
            out, lse = ctx.saved_arrays
            q, k, v = (t.array for t in ctx.arguments[:3])
            return (*ctx.kernels.attention_backward(grad_output, q, k, v, out, lse, scale, ctx.causal, ctx.dropout),
                    None, None, None)
        probs, used, q, k, v, _ = ctx.saved_arrays
        backend = ctx.backend
        grad_v = backend.matmul(_transposed(backend, used), grad_output)
        grad_probs = backend.matmul(grad_output, _transposed(backend, v))
        if dropout_keep is not None:
            grad_probs = grad_probs * ctx.keep
        grad_scores = probs * (grad_probs - (grad_probs * probs).sum(axis=-1, keepdims=True))
        grad_q = backend.matmul(grad_scores, k) * scale
        grad_k = backend.matmul(_transposed(backend, grad_scores), q) * scale
        # batch dims that broadcast (as PyTorch's, whose products are matmuls): each gradient summed to its input
        grad_q, grad_k, grad_v = (grad if grad.shape == t.shape else _sum_to_shape(backend, grad, t.shape)
                                  for grad, t in zip((grad_q, grad_k, grad_v), ctx.arguments[:3]))
        mask = ctx.arguments[3]
        grad_mask = None
        if mask is not None and mask.dtype.is_floating and ctx.needs_input_grad[3]:
            # an additive mask enters the scores as is: its gradient is theirs, summed over its broadcast dims
            grad_mask = _sum_to_shape(backend, grad_scores, mask.shape)
        return grad_q, grad_k, grad_v, grad_mask, None, None

    @staticmethod
    def composed_arguments(ctx):
        """Where an input may change after the forward (see forward), differentiate at the copy it kept."""
        if "free_arguments" not in vars(ctx):
            return ctx.arguments
        _, _, *kept = ctx.saved_arrays
        return tuple(AtForwardValues.apply(argument, kept[i]) if i in ctx.free_arguments and kept[i] is not None
                     else argument for i, argument in enumerate(ctx.arguments[:4])) + tuple(ctx.arguments[4:])

    @staticmethod
    def composed(ctx, q, k, v, mask, dropout_keep, scale):
        scores = (q @ k.transpose(-2, -1)) * scale
        if mask is not None:
            scores = scores + mask if mask.dtype.is_floating else scores.masked_fill(~mask, -float("inf"))
        # the softmax op, not exp / sum: its backward, out * (g - sum(g * out)), cancels exactly where PyTorch's does
        # (one key: the output is v whatever q and k are, and every derivative by q and k is exactly 0)
        if scores.shape[-1]:
            masked_rows = scores.detach().amax(-1, keepdim=True) == -float("inf")  # every key masked out: zeros
            probs = Softmax.apply(scores.masked_fill(masked_rows, 0), scores.ndim - 1).masked_fill(masked_rows, 0)
        else:
            probs = scores  # no keys: nothing to weigh
        if isinstance(dropout_keep, RegeneratedDropout):  # a constant: the mask has no gradient
            dropout_keep = tensor_class()._make(dropout_keep.keep_array(), q.device)
        if dropout_keep is not None:
            probs = probs * dropout_keep
        return probs @ v


def _other_path_keeps_v(q, k, v, mask):
    """PyTorch's other path is composed: weights = softmax(q k^T * scale + mask), then weights @ v. That matmul
    saves v only for the weights' gradient, and then a copy of v where it makes one (matmul.pytorch_copies)."""
    weights_need_grad = q.requires_grad or k.requires_grad or (
        mask is not None and mask.dtype.is_floating and mask.requires_grad)
    if not weights_need_grad:
        return False
    batch = broadcast_shape("scaled_dot_product_attention", q.shape[:-2], k.shape[:-2])
    weights = Layout.c_ordered(batch + (q.shape[-2], k.shape[-2]), requires_grad=True)
    return not pytorch_copies(weights, Layout.of(v))[1]


def _keep_values(dropout_keep):
    if isinstance(dropout_keep, RegeneratedDropout):
        return dropout_keep.keep_array()
    return None if dropout_keep is None else dropout_keep.array


def _sum_to_shape(backend, array, shape):
    leading = array.ndim - len(shape)
    stretched = tuple(range(leading)) + tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and array.shape[leading + i] != 1)
    return backend.reshape(backend.sum(array, stretched, True), shape)


def _transposed(backend, array):
    """The last two dims swapped (batch dims may differ between the arrays a product broadcasts)."""
    return backend.transpose(array, tuple(range(array.ndim - 2)) + (array.ndim - 1, array.ndim - 2))
