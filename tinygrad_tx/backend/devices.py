"""Device names, as torch.device: where a tensor's memory lives.

    device("cuda:1")        device(type='cuda', index=1)
    device("cuda", 1)       the same
    device("cuda")          device(type='cuda'): no index, "the current CUDA device"
    device("cpu")           device(type='cpu')

A device is also the str of its name, so it equals that string, hashes as it, formats as it and keys
a dict as it: `t.device == "cpu"` holds, and `f"{t.device}"` is "cpu". (torch's device never equals a
string.) A tensor's device always names its index: a tensor made on "cuda" is on device("cuda:0").
"""
TYPES = ("cpu", "cuda")
NO_ACCELERATOR = "Cannot access accelerator device when none is available."


class device(str):
    def __new__(cls, type, index=None):
        if isinstance(type, device) and index is None:
            return type
        if isinstance(type, int) and not isinstance(type, bool):  # device(0): the accelerator's device 0
            if index is not None:
                raise TypeError("device: an integer device takes no index")
            if cuda_device_count() == 0:
                raise RuntimeError(NO_ACCELERATOR)
            type, index = "cuda", type
        if type is None:
            raise TypeError("device: expected a device name such as 'cpu' or 'cuda:0', got None")
        type = type if isinstance(type, str) else str(type)  # another library's device object, e.g. torch.device
        name, colon, number = type.partition(":")
        if name not in TYPES:
            raise ValueError(f"unknown device {type!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if colon:
            if index is not None:
                raise ValueError(f"device: {type!r} names an index and index={index} was given too")
            if not number.isdigit() or (number != "0" and number.startswith("0")):
                raise ValueError(f"unknown device {type!r}: expected 'cpu', 'cuda' or 'cuda:N'")
            index = int(number)
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int):
                raise TypeError(f"device: index must be an int, got {index!r}")
            if index < 0:
                raise ValueError(f"device: index must not be negative, got {index}")
        return super().__new__(cls, name if index is None else f"{name}:{index}")

    @property
    def type(self):
        return self.partition(":")[0]

    @property
    def index(self):
        _, colon, number = self.partition(":")
        return int(number) if colon else None

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __reduce__(self):
        return device, (str(self),)


_canonical = {}  # what callers pass ('cuda', device('cuda:0'), None) -> the device a tensor on it has


def normalize_device(name):
    """The device a tensor made on `name` is on: 'cuda' -> device('cuda:0'), 'cpu:0' -> device('cpu'),
    None -> device('cpu'). Raises ValueError for a name that is not 'cpu', 'cuda' or 'cuda:N'."""
    try:
        canonical = _canonical.get(name)
    except TypeError:  # unhashable: let device() say what it expected
        canonical = None
    if canonical is not None:
        return canonical
    given = device("cpu" if name is None else name)
    if given.type == "cpu":
        canonical = device("cpu")  # as torch: 'cpu:0' names the CPU, and a tensor's CPU device has no index
    else:
        canonical = device("cuda", 0 if given.index is None else given.index)
    if not isinstance(name, int):  # device(0)'s answer depends on whether a GPU is here: not cached
        _canonical[name] = canonical
    return canonical


def cuda_device(index=None):
    """Where .cuda(index) moves a tensor or module: cuda:0 for None, else cuda:index (an int, 'cuda:N' or a
    device)."""
    if index is None:
        return device("cuda", 0)
    named = device("cuda", index) if isinstance(index, int) and not isinstance(index, bool) else device(index)
    if named.type != "cuda":
        raise ValueError(f"cuda(): expected a CUDA device, got {named}")
    return normalize_device(named)


def cuda_unavailable_reason():
    """Why CUDA cannot be used here, in words (what is missing and what to check); None where it can."""
    try:
        import cupy
    except ImportError:
        return 'CuPy is not installed: pip install "tinygrad_tx[cuda]" (or "tinygrad_tx[cuda12]" for CUDA 12)'
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as error:  # CUDARuntimeError: no driver, a driver too old for this CuPy
        return (f"CuPy is installed but CUDA cannot start here ({type(error).__name__}: {error}). Check `nvidia-smi` "
                "and that the CuPy package matches the CUDA driver (tinygrad_tx[cuda] is for CUDA 13, "
                "tinygrad_tx[cuda12] for CUDA 12)")
    return None if count else "CuPy is installed but sees no CUDA device"


def cuda_device_count():
    """Visible CUDA devices; 0 without CuPy, a driver or a GPU. Never raises."""
    try:
        import cupy
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # ImportError, CUDARuntimeError (no driver, driver too old), anything CuPy raises at init
        return 0
