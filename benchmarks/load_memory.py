"""How much memory loading a safetensors file takes: the peak growth of the resident set while
loading, divided by the file's size. 1.0 is one copy of the weights; 2.0 means the loader held the
file's bytes twice at some moment (e.g. a memory map or a read buffer plus the arrays copied out of it).

The file holds one big float32 tensor (400 MiB by default) and many small ones, as a model's weights
do. Each loader runs in a fresh process: it imports what it needs, resets the peak counter
(/proc/self/clear_refs), loads the file, reads every value (a lazy loader pays here), and reports
the peak (VmHWM in /proc/self/status) minus the resident set before loading. Linux only.

    python benchmarks/load_memory.py
    python benchmarks/load_memory.py --big-mb 100 --loaders ours safetensors.numpy
    python benchmarks/load_memory.py --measure ours FILE   # one loader on one file: prints the ratio
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


# each loader imports what it needs and returns path -> {name: NumPy array}; the imports happen before
# the peak counter is reset, so they do not count as loading
def ours():
    from tinygrad_tx.serialization import load_safetensors
    return lambda path: {name: tensor.numpy() for name, tensor in load_safetensors(path).items()}


def ours_archive():
    import tinygrad_tx
    return lambda path: {name: tensor.numpy() for name, tensor in tinygrad_tx.load(path).items()}


def safetensors_numpy():
    from safetensors.numpy import load_file
    return load_file


def safetensors_torch():
    from safetensors.torch import load_file
    return lambda path: {name: tensor.numpy() for name, tensor in load_file(path).items()}


LOADERS = {  # name -> (its import, which file it reads)
    "ours": (ours, "safetensors"),
    "ours, tinygrad_tx.load": (ours_archive, "archive"),
    "safetensors.numpy": (safetensors_numpy, "safetensors"),
    "safetensors.torch": (safetensors_torch, "safetensors"),
}


def write_test_files(directory, big_mb, small_count):
    """-> {file kind: path}: the same tensors as a safetensors file and as a tinygrad_tx.save archive."""
    import tinygrad_tx
    from tinygrad_tx.serialization import save_safetensors
    rng = np.random.default_rng(0)
    tensors = {"big": tinygrad_tx.from_numpy(rng.standard_normal(big_mb * 2 ** 18, dtype=np.float32))}
    for index in range(small_count):  # biases, norms, small projections: 1 KB to 64 KB each
        tensors[f"small.{index}"] = tinygrad_tx.from_numpy(rng.standard_normal(int(rng.integers(256, 16384)),
                                                                                dtype=np.float32))
    paths = {"safetensors": os.path.join(directory, "weights.safetensors"),
             "archive": os.path.join(directory, "weights.pt")}
    save_safetensors(tensors, paths["safetensors"])
    tinygrad_tx.save(tensors, paths["archive"])
    return paths


def measure_in_this_process(loader, path):
    """Peak resident-set growth while loading path, divided by the file's size (call in a fresh process)."""
    load = LOADERS[loader][0]()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set: the imports' peak does not count
    before = _status_bytes("VmRSS")
    arrays = load(path)
    total = sum(float(np.sum(array, dtype=np.float64)) for array in arrays.values())  # touch every value
    assert np.isfinite(total)
    return (_status_bytes("VmHWM") - before) / os.path.getsize(path)


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # the kernel writes kB
    raise RuntimeError(f"no {field} in /proc/self/status (this measurement needs Linux)")


def measure(loader, path):
    """The ratio for loader on path, measured in a fresh Python process."""
    result = subprocess.run([sys.executable, __file__, "--measure", loader, path],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mb", type=int, default=400, help="size of the big tensor in MiB")
    parser.add_argument("--small", type=int, default=1000, help="how many small tensors")
    parser.add_argument("--loaders", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--measure", nargs=2, metavar=("LOADER", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        loader, path = args.measure
        print(f"{measure_in_this_process(loader, path):.3f}")
        return
    with tempfile.TemporaryDirectory() as directory:
        paths = write_test_files(directory, args.big_mb, args.small)
        print(f"one {args.big_mb} MiB float32 tensor and {args.small} small ones; "
              f"{os.path.getsize(paths['safetensors']) / 2 ** 20:.0f} MiB safetensors file")
        print(f"{'loader':<24} peak memory growth / file size")
        for loader in args.loaders:
            print(f"{loader:<24} {measure(loader, paths[LOADERS[loader][1]]):.2f}")


if __name__ == "__main__":
    main()
