"""Differentiable ops, each a Function with forward and backward side by side.

elementwise  arithmetic, //, %, rounding, pointwise math   reduce     sum, cumsum, max, min
movement     reshape, permute, expand, flip, roll, cat      indexing   x[i], x[i] = v, gather
matmul       batched matrix product                         softmax, activation (gelu), layer_norm,
cross_entropy, attention: fused ops with hand-derived backward (see fused.py)
einsum       no Function of its own: lowered to the ops above, which differentiate it
"""
