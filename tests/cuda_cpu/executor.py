"""Runs our .cu kernel sources on the CPU: compiled by the system C++ compiler with cuda_cpu.h, launched with
the grid, block and arguments launch.py's CudaKernels gives them.

    module = compile_family("softmax")                  # the text NVRTC gets: kernels.source("softmax")
    module.get_function("softmax_forward_f32")(grid, block, args)

`args` are what CuPy would receive: device arrays (here NumPy arrays, ideally from fake_cupy, which puts each
array against a guard page) and NumPy scalars. Every launch checks them against the kernel's C signature
(count, scalar types, element types of pointers), checks the grid and block against the real hardware limits,
and runs under the current `schedule` (see `schedules`). Errors the kernel makes (deadlock, divergent barrier,
memory fault) raise KernelError.
"""
import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading

import numpy as np

from tinygrad_tx.backend import kernels

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "cuda_cpu.h")
CACHE_DIR = os.path.join(tempfile.gettempdir(), "tinygrad_tx_cuda_cpu")
COMPILER = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")

# the limits every NVIDIA GPU since compute capability 3.0 has
MAX_GRID = (2 ** 31 - 1, 65535, 65535)
MAX_BLOCK = (1024, 1024, 64)
MAX_THREADS_PER_BLOCK = 1024

SCALAR_TYPES = {"float": np.float32, "double": np.float64, "int": np.int32, "unsigned int": np.uint32,
                "long long": np.int64, "unsigned long long": np.uint64, "bool": np.bool_}
C_TYPES = {np.float32: ctypes.c_float, np.float64: ctypes.c_double, np.int32: ctypes.c_int32, np.uint32: ctypes.c_uint32,
           np.int64: ctypes.c_int64, np.uint64: ctypes.c_uint64, np.bool_: ctypes.c_bool}
ELEMENT_TYPES = {"float": "float32", "double": "float64", "half_t": "float16", "bf16_t": "bfloat16",
                 "int": "int32", "unsigned int": "uint32", "long long": "int64", "unsigned long long": "uint64"}
THREAD_ORDERS = {"in order": 0, "reversed": 1, "random": 2}


class KernelError(RuntimeError):
    pass


class Schedule:
    """The order threads run between sync points and the order of blocks; seed for the random ones."""

    def __init__(self, threads="in order", blocks="in order", seed=0):
        self.threads, self.blocks, self.seed = threads, blocks, seed

    def __repr__(self):
        return f"Schedule(threads={self.threads!r}, blocks={self.blocks!r}, seed={self.seed})"


def schedules(count=4):
    """In order, both reversed, then seeded random orders of threads and shuffled blocks."""
    found = [Schedule(), Schedule("reversed", "reversed")]
    found += [Schedule("random", "random", seed) for seed in range(1, count - 1)]
    return found[:count]


_state = threading.local()


def current_schedule():
    return getattr(_state, "schedule", None) or Schedule()


@contextlib.contextmanager
def schedule(chosen):
    previous, _state.schedule = getattr(_state, "schedule", None), chosen
    try:
        yield
    finally:
        _state.schedule = previous


@contextlib.contextmanager
def only_blocks(linear_indices):
    """Run only these blocks (linear index x + gridDim.x * (y + gridDim.y * z)): for grids too large to run."""
    previous, _state.blocks = getattr(_state, "blocks", None), np.asarray(linear_indices, dtype=np.int64)
    try:
        yield
    finally:
        _state.blocks = previous


# --- signatures -------------------------------------------------------------------------------------------------
class Parameter:
    def __init__(self, text):
        text = " ".join(text.split())
        match = re.fullmatch(r"(.*?)(\w+)", text)
        self.type_text, self.name = match.group(1).strip(), match.group(2)
        base = self.type_text.replace("const", "").replace("__restrict", "").strip()
        self.is_pointer = base.endswith("*")
        self.base = base.rstrip("* ").strip()

    def check(self, kernel, position, value):
        where = f"{kernel}: argument {position} ({self.type_text} {self.name})"
        if self.is_pointer:
            if not isinstance(value, np.ndarray):
                raise KernelError(f"{where}: expected a device array, got {type(value).__name__}")
            expected = ELEMENT_TYPES.get(self.base)
            if expected is None or value.dtype.name != expected:
                raise KernelError(f"{where}: expected {expected} elements, got {value.dtype.name}")
            return ctypes.c_void_p(value.ctypes.data)
        expected = SCALAR_TYPES[self.base]
        if type(value) is not expected:  # CuPy passes a Python int as int64 and a float as double
            raise KernelError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
        return C_TYPES[expected](value.item())


def entry_points(source_text):
    """{name: [Parameter]} of every extern "C" __global__ function, after the preprocessor expands macros."""
    result = subprocess.run([COMPILER, "-E", "-P", "-x", "c++", "-std=c++14", "-D__global__=CUDA_CPU_ENTRY_POINT",
                             "-include", HEADER, "-"], input=source_text, capture_output=True, text=True)
    if result.returncode:
        raise KernelError(f"preprocessing failed:\n{result.stderr}")
    found = {}
    for name, parameters in re.findall(r'extern\s+"C"\s+CUDA_CPU_ENTRY_POINT\s+void\s+(\w+)\s*\(([^)]*)\)',
                                       result.stdout):
        found[name] = [Parameter(p) for p in parameters.split(",") if p.strip()]
    return found


# --- compiling ---------------------------------------------------------------------------------------------------
def _trampolines(signatures):
    """An exported caller per entry point that unpacks an array of argument addresses (the C side has no varargs
    launch)."""
    lines = []
    for name, parameters in signatures.items():
        unpacked = ", ".join(f"*({p.type_text}*)args[{i}]" for i, p in enumerate(parameters))
        lines.append(f'extern "C" __attribute__((visibility("default"))) void cuda_cpu_call_{name}(void** args) '
                     f"{{ {name}({unpacked}); }}")
    return "\n".join(lines) + "\n"


class Module:
    def __init__(self, library_path, signatures):
        self.library = ctypes.CDLL(library_path)
        self.library.cuda_cpu_launch.restype = ctypes.c_int
        self.signatures = signatures
        self._lock = threading.Lock()  # one launch at a time: the runtime's fiber state is global

    def get_function(self, name):
        if name not in self.signatures:
            raise KernelError(f"no kernel named {name!r}; the source has {', '.join(sorted(self.signatures))}")
        return Function(self, name)


class Function:
    def __init__(self, module, name):
        self.module, self.name = module, name
        self.parameters = module.signatures[name]
        self.call = ctypes.cast(getattr(module.library, f"cuda_cpu_call_{name}"), ctypes.c_void_p)

    def __call__(self, grid, block, args):
        grid, block = _dims(grid), _dims(block)
        check_launch(self.name, grid, block)
        if len(args) != len(self.parameters):
            raise KernelError(f"{self.name}: takes {len(self.parameters)} arguments, got {len(args)}")
        values = [p.check(self.name, i, a) for i, (p, a) in enumerate(zip(self.parameters, args))]
        addresses = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        chosen = current_schedule()
        order = (ctypes.c_int * 3)(THREAD_ORDERS[chosen.threads], THREAD_ORDERS[chosen.blocks], chosen.seed)
        blocks = getattr(_state, "blocks", None)
        error = ctypes.create_string_buffer(1024)
        with self.module._lock:
            failed = self.module.library.cuda_cpu_launch(
                self.call, addresses, (ctypes.c_uint * 3)(*grid), (ctypes.c_uint * 3)(*block), order,
                None if blocks is None else blocks.ctypes.data_as(ctypes.POINTER(ctypes.c_longlong)),
                ctypes.c_longlong(0 if blocks is None else blocks.size), error, len(error))
        if failed:
            raise KernelError(f"{self.name} (grid {grid}, block {block}, {chosen}): {error.value.decode()}")
        for value in args:  # a write before the start of an array lands on its canary bytes
            check = getattr(value, "check_canary", None)
            if check is not None:
                check(self.name)


def _dims(dims):
    dims = tuple(int(d) for d in dims)
    return dims + (1,) * (3 - len(dims))


def check_launch(name, grid, block):
    """What cudaLaunchKernel rejects."""
    for axis, (size, limit) in enumerate(zip(grid, MAX_GRID)):
        if not 1 <= size <= limit:
            raise KernelError(f"{name}: grid dimension {'xyz'[axis]} = {size} is outside 1..{limit}")
    for axis, (size, limit) in enumerate(zip(block, MAX_BLOCK)):
        if not 1 <= size <= limit:
            raise KernelError(f"{name}: block dimension {'xyz'[axis]} = {size} is outside 1..{limit}")
    if block[0] * block[1] * block[2] > MAX_THREADS_PER_BLOCK:
        raise KernelError(f"{name}: {block[0] * block[1] * block[2]} threads per block; at most "
                          f"{MAX_THREADS_PER_BLOCK}")


def compile_source(source_text):
    """Compiles one kernel unit (cached by its text) and returns its Module."""
    if COMPILER is None:
        raise KernelError("no C++ compiler (g++ or $CXX) to build the CPU executor")
    signatures = entry_points(source_text)
    unit = f'#include "{HEADER}"\n{source_text}\n{_trampolines(signatures)}'
    with open(HEADER) as f:
        key = hashlib.sha256((f.read() + unit).encode()).hexdigest()[:20]
    os.makedirs(CACHE_DIR, exist_ok=True)
    library = os.path.join(CACHE_DIR, f"{key}.so")
    if not os.path.exists(library):
        source_path = os.path.join(CACHE_DIR, f"{key}.cpp")
        with open(source_path, "w") as f:
            f.write(unit)
        partial = f"{library}.{os.getpid()}"
        result = subprocess.run([COMPILER, "-std=c++14", "-O1", "-g0", "-fPIC", "-shared", "-fvisibility=hidden",
                                 "-Wall", "-Wno-unused-function", "-Wno-unused-variable", "-o", partial, source_path],
                                capture_output=True, text=True)
        if result.returncode:
            raise KernelError(f"compiling {source_path} failed:\n{result.stderr}")
        os.replace(partial, library)  # atomic: a parallel test run never loads a half-written library
    return Module(library, signatures)


_modules = {}


def compile_family(family):
    """The family's kernels as NVRTC sees them: kernels.source(family), common.cuh pasted in."""
    if family not in _modules:
        _modules[family] = compile_source(kernels.source(family))
    return _modules[family]
