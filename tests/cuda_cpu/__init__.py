"""Our CUDA kernels run on the CPU: cuda_cpu.h gives the CUDA names a CPU meaning, executor.py compiles and
launches, fake_cupy.py stands in for CuPy with guarded arrays."""
