"""The CUDA kernels without a GPU: every source compiles with NVRTC for Hopper (compute_90) under the options
CuPy adds, the bit-exact kernels keep float32 subnormals despite CuPy's -ftz=true, ``cuda_kernels.takes``
turns NumPy arrays away, and importing the kernel modules does not import CuPy.

The compile check needs CuPy and NVRTC (no GPU); CI has neither and skips it. Here:
``pip install --target DIR cupy-cuda12x nvidia-cuda-nvrtc-cu12``, then run with ``PYTHONPATH=DIR`` and
``LD_LIBRARY_PATH=DIR/nvidia/cuda_nvrtc/lib``. The kernels' results are checked on a GPU by
``tests/gpu/test_cuda_kernels.py``."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from ember import kernels
from ember.kernels import cuda as cuda_kernels
from ember.kernels.cuda import bspline, conv, loss, norm, pool, softmax

MODULES = {"conv": conv, "pool": pool, "loss": loss, "norm": norm, "softmax": softmax, "bspline": bspline}
EXACT = ("conv", "pool")  # bit-exact kernels: no flushing float32 instruction allowed in their PTX
# what cupy.RawModule adds to ours when it compiles with NVRTC (cupy/cuda/compiler.py)
NAN_TEST = re.compile(r"setp\.(nan|num)\.ftz\.f32")
CUPY_OPTIONS = ("-arch=compute_90", "--device-as-default-execution-space", "-ftz=true")


def _nvrtc():
    """CuPy's NVRTC binding, or skip with the reason it is unusable."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as exc:
        pytest.skip(f"CuPy is not installed ({exc}): the CUDA sources are compiled where it is")
    try:
        nvrtc.getVersion()
    except Exception as exc:  # the NVRTC library is missing or cannot be loaded
        pytest.skip(f"NVRTC is unusable here ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    return nvrtc


def compile_ptx(nvrtc, code: str) -> str:
    """The PTX NVRTC makes of ``code`` with ember's and CuPy's options; fails the test with NVRTC's log."""
    program = nvrtc.createProgram(code, "kernel.cu", (), ())
    try:
        try:
            nvrtc.compileProgram(program, list(cuda_kernels.OPTIONS + CUPY_OPTIONS))
        except nvrtc.NVRTCError:
            pytest.fail(f"NVRTC rejected the source:\n{nvrtc.getProgramLog(program)}\n{code}")
        return nvrtc.getPTX(program).decode()
    finally:
        nvrtc.destroyProgram(program)


def variants():
    for name, module in MODULES.items():
        for types in module.VARIANTS:
            tag = "-".join(np.dtype(t).name for _, t in sorted(types.items()))
            yield pytest.param(name, types, id=f"{name}-{tag}")


def kernel_names(source: str) -> set[str]:
    return set(re.findall(r'extern "C" __global__ void (\w+)\(', source))


@pytest.mark.parametrize(("name", "types"), list(variants()))
def test_source_compiles_for_hopper(name, types):
    nvrtc = _nvrtc()
    module = MODULES[name]
    ptx = compile_ptx(nvrtc, cuda_kernels.source(module.SOURCE, **types))
    entries = set(re.findall(r"\.visible \.entry (\w+)\(", ptx))
    assert entries == kernel_names(module.SOURCE), "every extern \"C\" kernel must be an unmangled PTX entry"
    if name in EXACT:
        # (a NaN test, setp.nan/setp.num, means the same with or without flushing)
        flushing = [line.strip() for line in ptx.splitlines() if ".ftz" in line and not NAN_TEST.search(line)]
        assert not flushing, f"{name}: float32 instructions that flush subnormals: {flushing[:5]}"


def test_every_module_declares_its_kernels():
    for name, module in MODULES.items():
        assert kernel_names(module.SOURCE), f"{name}.SOURCE defines no extern \"C\" __global__ kernel"
        assert module.VARIANTS, f"{name}.VARIANTS is empty"


def test_takes_turns_numpy_arrays_away():
    a = np.zeros((3, 4), dtype=np.float32)
    assert not cuda_kernels.takes(a)
    assert not cuda_kernels.accepts(a, a)
    with kernels.use("numpy"):
        assert not cuda_kernels.takes(a)


def test_source_declares_the_element_types():
    code = cuda_kernels.source("/* body */", T=np.float64, A=np.int8)
    assert code.startswith("typedef signed char A;\ntypedef double T;\n")
    assert code.endswith("/* body */")


def test_importing_the_kernels_does_not_import_cupy():
    script = ("import sys, ember, ember.ops, ember.kernels.cuda as c\n"
              "from ember.kernels.cuda import bspline, conv, loss, norm, pool, softmax\n"
              "print('cupy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
