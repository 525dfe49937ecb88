"""einsum, lowered to Tensor ops: a repeated subscript takes a diagonal (a strided slice), a subscript no
later operand or the output needs is summed away, and each pair of operands becomes one batched matmul.
Every step is a differentiable op, so einsum's gradients, of any order, are theirs.

    einsum("bij,bjk->bik", a, b)    # batched matrix product
    einsum("ii", x)                 # trace: the implicit output keeps the subscripts that appear once
    einsum("...ij,...j", m, v)      # "..." stands for the leading dims, which broadcast
"""
from .dims import count_over

_LETTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):  # einsum(eq, [a, b]) as PyTorch allows
        operands = tuple(operands[0])
    if not operands:
        raise RuntimeError("einsum: expected at least one operand")
    for x in operands[1:]:
        if x.dtype is not operands[0].dtype:
            raise RuntimeError(f"einsum: expected operands of one dtype, got {operands[0].dtype} and {x.dtype}")
    if operands[0].dtype.name == "bool":
        raise RuntimeError("einsum: bool operands are not supported")
    inputs, output = _parse(equation, operands)
    _check_sizes(inputs, operands)
    terms = [_diagonals(x, labels) for x, labels in zip(operands, inputs)]
    x, labels = terms[0]
    for position, (y, y_labels) in enumerate(terms[1:], start=1):
        needed = set(output).union(*(term[1] for term in terms[position + 1:]))
        # sums on the way keep the dtype: matmul wants both operands of one dtype (int32 stays int32)
        x, labels = _sum_out(x, labels, needed | set(y_labels), x.dtype)
        y, y_labels = _sum_out(y, y_labels, needed | set(labels), y.dtype)
        x, labels = _contract(x, labels, y, y_labels, needed)
    x, labels = _sum_out(x, labels, set(output))  # as PyTorch's einsum, a final sum of int32 gives int64
    return x.permute([labels.index(label) for label in output])


def _parse(equation, operands):
    """The labels of each operand's dims and of the output's: letters, and for the dims "..." covers the ints
    0..n-1 (n the most dims any "..." covers), aligned to the right so that they broadcast."""
    equation = equation.replace(" ", "")
    if equation.count("->") > 1:
        raise RuntimeError(f"einsum: {equation!r} has more than one '->'")
    terms, _, output_term = equation.partition("->")
    terms = terms.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(f"einsum: {equation!r} names {len(terms)} operand(s), got {len(operands)}")
    parsed = [_split_term(term, equation) for term in terms]
    ellipsis_dims = []
    for position, ((letters, has_ellipsis), x) in enumerate(zip(parsed, operands)):
        n_letters = len(letters) - has_ellipsis
        if n_letters > x.ndim or (not has_ellipsis and n_letters != x.ndim):
            raise RuntimeError(f"einsum: operand {position} of shape {tuple(x.shape)} has {x.ndim} dims, but "
                               f"{terms[position]!r} names {n_letters}")
        ellipsis_dims.append(x.ndim - n_letters if has_ellipsis else 0)
    width = max(ellipsis_dims)
    inputs = [_labels(letters, list(range(width - n, width))) for (letters, _), n in zip(parsed, ellipsis_dims)]
    all_letters = [label for labels in inputs for label in labels if isinstance(label, str)]
    if "->" in equation:
        letters, _ = _split_term(output_term, equation)
        for label in letters:
            if label != "..." and letters.count(label) > 1:
                raise RuntimeError(f"einsum: output subscript {label} appears more than once in {equation!r}")
            if label != "..." and label not in all_letters:
                raise RuntimeError(f"einsum: output subscript {label} of {equation!r} is in no operand")
        output = _labels(letters, list(range(width)))
    else:  # implicit: the broadcast dims, then the letters that appear once, in alphabetical order
        output = list(range(width)) + sorted(label for label in set(all_letters) if all_letters.count(label) == 1)
    return inputs, output


def _split_term(term, equation):
    """'ab...c' -> (['a', 'b', '...', 'c'], True)."""
    letters, i = [], 0
    while i < len(term):
        if term.startswith("...", i) and "..." not in letters:
            letters.append("...")
            i += 3
        elif term[i] in _LETTERS:
            letters.append(term[i])
            i += 1
        else:
            raise RuntimeError(f"einsum: invalid subscript {term[i]!r} in {equation!r}: subscripts are letters "
                               "a-z and A-Z, with at most one '...' per operand")
    return letters, "..." in letters


def _labels(letters, ellipsis_labels):
    labels = []
    for letter in letters:
        labels += ellipsis_labels if letter == "..." else [letter]
    return labels


def _check_sizes(inputs, operands):
    """A label has one size; a size of 1 broadcasts against the others, as in PyTorch."""
    sizes = {}
    for position, (labels, x) in enumerate(zip(inputs, operands)):
        seen = {}
        for label, n in zip(labels, x.shape):
            if seen.setdefault(label, n) != n:
                raise RuntimeError(f"einsum: subscript {label} is repeated in operand {position} (shape "
                                   f"{tuple(x.shape)}) with different sizes, {seen[label]} != {n}")
            if sizes.get(label, 1) not in (1, n) and n != 1:
                name = f"subscript {label}" if isinstance(label, str) else "a dim that '...' covers"
                raise RuntimeError(f"einsum: {name} has size {n} in operand {position} (shape {tuple(x.shape)}), "
                                   f"which does not broadcast with size {sizes[label]} in an earlier operand")
            if n != 1 or label not in sizes:
                sizes[label] = n


def _diagonals(x, labels):
    """x with each repeated label taken once, along the diagonal: "ii" -> "i"."""
    labels = list(labels)
    for label in dict.fromkeys(labels):
        while labels.count(label) > 1:
            first = labels.index(label)
            second = labels.index(label, first + 1)
            rest = [d for d in range(x.ndim) if d not in (first, second)]
            n = x.shape[first]
            # in a row-major (n, n) block the diagonal is every (n + 1)-th element
            x = x.permute(rest + [first, second]).reshape(tuple(x.shape[d] for d in rest) + (n * n,))[..., ::n + 1]
            labels = [labels[d] for d in rest] + [label]
    return x, labels


def _sum_out(x, labels, keep, dtype=None):
    """Sum over the labels not in keep."""
    dims = tuple(d for d, label in enumerate(labels) if label not in keep)
    if not dims:
        return x, labels
    return x.sum(dims, dtype=dtype), [label for label in labels if label in keep]


def _contract(x, x_labels, y, y_labels, needed):
    """One batched matmul: the labels both share and need later are the batch, the ones both share and
    nothing needs later are summed by the product, and each side's own labels are its rows or columns."""
    batch = [label for label in x_labels if label in y_labels and label in needed]
    summed = [label for label in x_labels if label in y_labels and label not in needed]
    rows = [label for label in x_labels if label not in y_labels]
    columns = [label for label in y_labels if label not in x_labels]
    for label in summed:  # a size-1 dim against a longer one broadcasts: sum the longer one first
        n, m = x.shape[x_labels.index(label)], y.shape[y_labels.index(label)]
        if n != m:
            if n == 1:
                y = y.sum(y_labels.index(label), keepdim=True)
            else:
                x = x.sum(x_labels.index(label), keepdim=True)
    x = x.permute([x_labels.index(label) for label in batch + rows + summed])
    y = y.permute([y_labels.index(label) for label in batch + summed + columns])
    n_batch = len(batch)
    x_rows = count_over(x.shape, range(n_batch, n_batch + len(rows)))
    inner = count_over(x.shape, range(n_batch + len(rows), x.ndim))
    y_columns = count_over(y.shape, range(n_batch + len(summed), y.ndim))
    product = x.reshape(tuple(x.shape[:n_batch]) + (x_rows, inner)) @ \
        y.reshape(tuple(y.shape[:n_batch]) + (inner, y_columns))  # (batch..., rows, columns)
    shape = tuple(product.shape[:n_batch]) + tuple(x.shape[n_batch:n_batch + len(rows)]) + \
        tuple(y.shape[n_batch + len(summed):])
    return product.reshape(shape), batch + rows + columns
