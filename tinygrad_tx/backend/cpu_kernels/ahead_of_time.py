"""The one-thread kernels built ahead of time into an extension module, so that a process runs them without
importing Numba. Numba's import and its JIT's cached machine code took 110 MB of resident memory, half of a
training process of the CPU recipe (230 MB); the module takes under 1 MB, runs as fast and gives the same bits.

numba.pycc builds it with the JIT's options (float32 in program order, NumPy's error model, the GIL let go while
a kernel runs) for this machine's CPU, once per version of the kernels' sources, of Numba and of Python, in a
child process (this one never imports Numba), in about 30 s; it needs a C compiler. Where the build fails, the
kernels run from the JIT (and the failure is remembered, so that later processes do not retry). The threaded
builds, for work large enough to share among threads (NumbaKernels picks), always come from the JIT.
"""
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import warnings
from types import SimpleNamespace

import numpy as np

from . import HERE, sources_digest

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def module_name():
    """compiled_<digest of what the machine code depends on>."""
    digest = sources_digest()
    digest.update(f"{importlib.metadata.version('numba')} {sys.version} {platform.machine()} {_cpu()}".encode())
    return "compiled_" + digest.hexdigest()[:20]


def _cpu():
    """What identifies this CPU's instruction set: built for it, the module may not run on another."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def _directories():
    """Where modules are kept: __pycache__ beside the sources, or the user's cache where that is read-only."""
    user = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tinygrad_tx")
    return [os.path.join(HERE, "__pycache__"), user]


def load():
    """The built module (building it first where needed), or None: then the kernels run from the JIT."""
    name = module_name()
    for directory in _directories():
        path = os.path.join(directory, name + SUFFIX)
        if os.path.exists(path):
            return _import(name, path)
        if os.path.exists(os.path.join(directory, name + ".failed")):
            return None
    for directory in _directories():
        try:
            os.makedirs(directory, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                break
        except OSError:
            continue
    else:
        return None
    print("tinygrad_tx: building the CPU kernels for this machine (once, about 30 s)", file=sys.stderr, flush=True)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    child = subprocess.run([sys.executable, "-m", __name__, directory, name], env=env, capture_output=True, text=True)
    if child.returncode:  # killed (a signal: negative) or failed; only a failure is remembered
        reason = (child.stderr.strip().splitlines() or ["no message"])[-1]
        if child.returncode > 0:
            with open(os.path.join(directory, name + ".failed"), "w") as f:
                f.write(child.stderr)
        warnings.warn(f"tinygrad_tx: building the CPU kernels failed ({reason}); they run from Numba's JIT "
                      f"(the log: {os.path.join(directory, name + '.failed')}; delete it to try again)")
        return None
    return _import(name, os.path.join(directory, name + SUFFIX))


def _import(name, path):
    """The built module's kernels, each behind the checks of its array arguments (_Checked)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(path[:-len(SUFFIX)] + ".json") as f:
        arrays = json.load(f)
    return SimpleNamespace(**{kernel: _Checked(kernel, getattr(module, kernel), arguments)
                              for kernel, arguments in arrays.items()})


class _Checked:
    """A kernel of the built module. Its wrapper, unlike the JIT's dispatcher, does not check what it is given: it
    would read any array as the C-contiguous array of the dtype and dims its signature names (a strided view as
    the wrong elements, a float64 array past its end). So each array argument is checked here first."""

    def __init__(self, name, function, arrays):
        self.name, self.function = name, function
        self.arrays = [(position, np.dtype(dtype), ndim) for position, dtype, ndim in arrays]

    def __call__(self, *args):
        for position, dtype, ndim in self.arrays:
            a = args[position]
            if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.ndim == ndim and a.flags.c_contiguous):
                given = (f"{a.dtype} array of shape {a.shape} (C-contiguous: {a.flags.c_contiguous})"
                         if isinstance(a, np.ndarray) else type(a).__name__)
                raise TypeError(f"CPU kernel {self.name}: argument {position} must be a C-contiguous {dtype} array "
                                f"of {ndim} dims, got a {given}")
        return self.function(*args)


def build(directory, name):
    """Compile every kernel's one-thread build into directory/name<SUFFIX> (written whole or not at all), and
    remove the modules of other versions there."""
    warnings.simplefilter("ignore")  # numba.pycc's pending deprecation
    import numba.pycc.compiler
    from numba.pycc import CC

    from . import jit_kernels

    def flags():  # pycc takes no compile options: its flags, with the JIT's error model, and the GIL let go (nogil)
        options = default_flags()
        options.error_model = "numpy"
        options.release_gil = True
        return options
    default_flags, numba.pycc.compiler.Flags = numba.pycc.compiler.Flags, flags
    compiler = CC(name)
    compiler.target_cpu = "host"
    compiler.verbose = False
    arrays = {}  # kernel -> [position, dtype, dims] of each array argument, for _Checked
    for kernel_name, kernel in jit_kernels().items():
        compiler.export(kernel_name, kernel.signature)(kernel.function)  # prange compiles as range here
        arguments, _ = numba.core.sigutils.normalize_signature(kernel.signature)
        arrays[kernel_name] = [[position, str(t.dtype), t.ndim] for position, t in enumerate(arguments)
                               if isinstance(t, numba.types.Array)]
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        compiler.output_dir = scratch
        compiler.compile()
        with open(os.path.join(directory, name + ".json"), "w") as f:  # before the module: it needs this
            json.dump(arrays, f)
        os.replace(os.path.join(scratch, name + SUFFIX), os.path.join(directory, name + SUFFIX))
    for old in os.listdir(directory):
        if old.startswith("compiled_") and not old.startswith(name):
            try:
                os.remove(os.path.join(directory, old))
            except OSError:  # another process's module in use (or already gone)
                pass


if __name__ == "__main__":
    build(*sys.argv[1:3])
