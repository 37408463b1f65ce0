"""CUDA kernels (CuPy ``RawModule``) behind the same ops as the numba kernels: the GPU's fast paths.

Each module here holds the CUDA C++ source of one family of kernels and thin Python launchers with the
same arguments as the numba kernels of ``ember.kernels`` (so an op calls either with one line), and its
docstring says which reference the kernels must equal and how they are launched. The NumPy/CuPy code
in ``ember.ops`` stays the definition and the fallback: ``EMBER_KERNELS=numpy`` (or
``kernels.use("numpy")``) sends CuPy arrays to it too, and any array these kernels do not take (other
dtypes, strided views) goes there anyway.

CuPy is imported lazily (``ember.kernels`` must import without it): an array can only be a CuPy array
once CuPy is imported, so ``takes`` looks it up in ``sys.modules``. Kernels are compiled once per
(source, element types) on first use, with NVRTC through ``cupy.RawModule``.

Two compiler settings matter for parity with the CPU:

- ``--fmad=false``: NVRTC otherwise contracts ``a * b + c`` into one fused multiply-add, rounding once
  where NumPy and numba round twice.
- CuPy always compiles with ``-ftz=true`` (appended after our options, so it cannot be undone there):
  float32 subnormal operands and results of ``+``, ``*`` and comparisons flush to zero. The kernels that
  must be bit-exact (col2im, max pooling) use ``exact_add``, ``exact_mul`` and ``greater`` from the
  prelude below, which keep subnormals (``__fmaf_ieee_rn`` and a PTX ``setp`` ignore the flag); the
  reductions (within 1e-5 relative) use plain arithmetic. Doubles are never flushed.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from ... import kernels

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_C_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.int8): "signed char",
    np.dtype(np.int32): "int",
    np.dtype(np.int64): "long long",
}
OPTIONS = ("--fmad=false",)
THREADS = 256  # threads per block: a power of two (the row kernels' tree reductions halve it)

PRELUDE = r"""
// IEEE float32 arithmetic that CuPy's -ftz=true cannot flush (see ember/kernels/cuda/__init__.py).
__device__ __forceinline__ float exact_add(float a, float b) { return __fmaf_ieee_rn(a, 1.0f, b); }
__device__ __forceinline__ double exact_add(double a, double b) { return a + b; }
// a·b + (-0) is a·b rounded once, signed zeros included
__device__ __forceinline__ float exact_mul(float a, float b) { return __fmaf_ieee_rn(a, b, -0.0f); }
__device__ __forceinline__ double exact_mul(double a, double b) { return a * b; }
__device__ __forceinline__ bool greater(float a, float b) {
    int result;
    asm("{ .reg .pred p; setp.gt.f32 p, %1, %2; selp.s32 %0, 1, 0, p; }" : "=r"(result) : "f"(a), "f"(b));
    return result != 0;
}
__device__ __forceinline__ bool greater(double a, double b) { return a > b; }

// The sum of each thread's value over the block (THREADS threads, a power of two), by a tree in shared
// memory: the same order on every run. Every thread gets the sum; scratch is free again on return.
__device__ double block_sum(double value, double* scratch) {
    scratch[threadIdx.x] = value;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
        __syncthreads();
    }
    double total = scratch[0];
    __syncthreads();
    return total;
}
"""


def takes(*arrays) -> bool:
    """Whether the CUDA kernels apply: the kernel backend not forced to ``"numpy"``, and every array a
    C-contiguous float32/float64 CuPy array of one dtype (anything else goes to the reference)."""
    return _fit(arrays, True)


def accepts(*arrays) -> bool:
    """``takes`` without the layout condition, for kernels that copy their input into the layout they need
    anyway (max pooling's, as ``ember.kernels.accepts``)."""
    return _fit(arrays, False)


def _fit(arrays, contiguous: bool) -> bool:
    if kernels.reference_forced():
        return False
    cupy = sys.modules.get("cupy")
    if cupy is None:  # no CuPy array can exist before CuPy is imported
        return False
    dtype = arrays[0].dtype
    if dtype not in _FLOATS:
        return False
    for a in arrays:
        if not isinstance(a, cupy.ndarray) or a.dtype != dtype or (contiguous and not a.flags.c_contiguous):
            return False
    return True


def source(body: str, **types) -> str:
    """The full CUDA source of ``body`` with its element types: ``source(body, T=np.float32)`` starts with
    ``typedef float T;``."""
    typedefs = "".join(f"typedef {_C_TYPES[np.dtype(t)]} {name};\n" for name, t in sorted(types.items()))
    return typedefs + f"#define THREADS {THREADS}\n" + PRELUDE + body


@functools.cache
def kernel(body: str, name: str, **types):
    """The compiled kernel ``name`` of ``body`` for these element types, built once (``cupy.RawModule``)."""
    import cupy

    return cupy.RawModule(code=source(body, **types), options=OPTIONS).get_function(name)


def launch(fn, count: int, args) -> None:
    """Run ``fn`` with one thread per element of ``count`` (none when ``count`` is 0)."""
    if count > 0:
        fn(((count + THREADS - 1) // THREADS,), (THREADS,), args)


def launch_rows(fn, rows: int, args) -> None:
    """Run ``fn`` with one block of ``THREADS`` per row (none when there are no rows)."""
    if rows > 0:
        fn((rows,), (THREADS,), args)


def i64(value) -> np.int64:
    """An integer kernel argument (every integer parameter of these kernels is ``long long``)."""
    return np.int64(value)
