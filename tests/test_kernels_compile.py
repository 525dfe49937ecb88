"""Every .cu kernel source compiles for sm_80 (A100) and sm_90 (H100) with no error and no warning.

Compiles exactly the text CuPy hands NVRTC at run time (the family's file with common.cuh pasted in),
with nvcc to PTX and then ptxas to a cubin, warnings as errors at both steps: ptxas is where shared
memory over the 48 KB static limit or a register overflow would show. Without nvcc it compiles with
NVRTC through CuPy's bindings (a non-empty log fails the test); with neither it skips, saying so.
It also checks that each entry point launch.py calls exists in the compiled code.
"""
import os
import re
import shutil
import subprocess

import pytest

from tinygrad_tx.backend import kernels

ARCHITECTURES = ("sm_80", "sm_90")
LAUNCHER = os.path.join(kernels.KERNEL_DIR, "launch.py")


def find_nvcc():
    candidates = [shutil.which("nvcc")] + [os.path.join(root, "bin", "nvcc") for root in
                                           (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda")
                                           if root]
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def find_ptxas():
    """ptxas beside nvcc (which may be a symlink or a wrapper script), else on the PATH."""
    candidates = [os.path.join(os.path.dirname(path), "ptxas") for path in (os.path.realpath(NVCC), NVCC)]
    return next((c for c in candidates if os.path.isfile(c)), shutil.which("ptxas") or "ptxas")


def nvrtc_bindings():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()  # loads libnvrtc: fails when only the CuPy wheel is there
        return nvrtc
    except Exception:
        return None


def expected_entry_points():
    """family -> the kernel names launch.py asks for (NAME_{suffix} means NAME_f32, NAME_f16 and NAME_bf16)."""
    with open(LAUNCHER) as f:
        text = f.read()
    expected = {family: set() for family in kernels.FAMILIES}
    for family, name, templated in re.findall(r'_launch\("(\w+)", f?"(\w+?)(_\{[^}]*\})?"', text):
        expected[family] |= {f"{name}_{suffix}" for suffix in ("f32", "f16", "bf16")} if templated else {name}
    return expected


NVCC = find_nvcc()


def compile_with_nvcc(family, architecture, tmp_path):
    source = tmp_path / f"{family}.cu"
    source.write_text(kernels.source(family))
    ptx, cubin = tmp_path / f"{family}.ptx", tmp_path / f"{family}.cubin"
    options = [f"-arch={architecture}", "-Werror", "all-warnings", *kernels.COMPILE_OPTIONS]
    steps = [[NVCC, *options, "--ptx", str(source), "-o", str(ptx)],
             [find_ptxas(), f"-arch={architecture}", "--warning-as-error", str(ptx), "-o", str(cubin)]]
    for command in steps:
        result = subprocess.run(command, capture_output=True, text=True)
        output = (result.stdout + result.stderr).strip()
        assert result.returncode == 0 and not output, f"{' '.join(command)} failed:\n{output}"
    return ptx.read_text()


def compile_with_nvrtc(nvrtc, family, architecture):
    program = nvrtc.createProgram(kernels.source(family), f"{family}.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(program, [f"--gpu-architecture={architecture}", *kernels.COMPILE_OPTIONS])
        except Exception as error:
            pytest.fail(f"NVRTC: {family}.cu for {architecture} failed: {error}\n{nvrtc.getProgramLog(program)}")
        log = nvrtc.getProgramLog(program).strip("\x00").strip()
        assert not log, f"NVRTC warnings for {family}.cu ({architecture}):\n{log}"
        return nvrtc.getPTX(program).decode() if isinstance(nvrtc.getPTX(program), bytes) else nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("family", kernels.FAMILIES)
def test_kernel_compiles_without_warnings(family, architecture, tmp_path):
    if NVCC:
        ptx = compile_with_nvcc(family, architecture, tmp_path)
    else:
        nvrtc = nvrtc_bindings()
        if nvrtc is None:
            pytest.skip("neither nvcc (CUDA toolkit) nor NVRTC (CuPy with libnvrtc) is installed: cannot compile")
        ptx = compile_with_nvrtc(nvrtc, family, architecture)
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    missing = expected_entry_points()[family] - entries
    assert not missing, f"{family}.cu lacks entry points launch.py calls: {sorted(missing)} (has {sorted(entries)})"


def test_every_family_has_a_source_and_launches():
    expected = expected_entry_points()
    for family in kernels.FAMILIES:
        assert os.path.isfile(kernels.source_path(family)), family
        assert expected[family], f"launch.py never launches a {family} kernel"
        assert '#include "common.cuh"' not in kernels.source(family)  # pasted in: NVRTC gets one unit


def test_nvrtc_fallback_compiles_too():
    """The path CI's nvcc hides; runs where CuPy and libnvrtc are installed."""
    nvrtc = nvrtc_bindings()
    if nvrtc is None:
        pytest.skip("NVRTC (CuPy with libnvrtc) is not installed")
    for family in kernels.FAMILIES:
        ptx = compile_with_nvrtc(nvrtc, family, "sm_80")
        assert expected_entry_points()[family] <= set(re.findall(r"\.entry\s+(\w+)", ptx))
