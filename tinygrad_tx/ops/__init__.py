"""Differentiable ops, each a Function with forward and backward side by side.

elementwise  arithmetic and pointwise math        reduce     sum, max, min
movement     reshape, permute, expand, cat          indexing   x[i], x[i] = v, gather
matmul       batched matrix product                 softmax, activation (gelu), layer_norm,
cross_entropy, attention: fused ops with hand-derived backward (see fused.py)
"""
