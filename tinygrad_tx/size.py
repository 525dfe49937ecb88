"""Size: a tensor's shape, a tuple of ints (so it equals and unpacks like one), as torch.Size."""


class Size(tuple):
    __slots__ = ()

    def numel(self):
        """How many elements a tensor of this shape holds (1 for the shape of a 0-d tensor)."""
        count = 1
        for n in self:
            count *= n
        return count

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return Size(item) if isinstance(index, slice) else item  # a slice of a shape is a shape

    def __add__(self, other):
        return Size(tuple.__add__(self, other)) if isinstance(other, tuple) else NotImplemented

    def __radd__(self, other):
        return Size(tuple.__add__(other, self)) if isinstance(other, tuple) else NotImplemented

    def __repr__(self):
        return f"tinygrad_tx.Size({list(self)})"

    def __reduce__(self):
        return Size, (tuple(self),)
