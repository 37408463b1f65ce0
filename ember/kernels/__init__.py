"""Compiled fast paths (numba) for the fused element-wise work NumPy cannot do in one pass.

A NumPy expression like ``g * (cdf + x * pdf)`` walks memory once per operator; a compiled loop
does the whole expression per element in one pass, in registers. Each kernel here sits next to its
NumPy reference, which stays the definition of what the kernel computes: tests compare the two, and
``EMBER_KERNELS=numpy`` (or ``kernels.use("numpy")``) forces the reference everywhere, so CI runs
both paths.

Backends: ``"numba"`` (the default when numba is installed: ``pip install 'ember[fast]'``) and
``"numpy"``. Kernels only take NumPy arrays; CuPy arrays (the GPU) always go to the reference path,
which is written against the array module.

Two traps found on the 2-core machines ember targets, both avoided in every kernel:

- Python float literals are float64 inside numba: ``0.5 * x`` on a float32 ``x`` computes in float64
  and stops the loop from vectorising. Constants are ``np.float32`` (or the input's dtype).
- numba's default ``error_model="python"`` checks each division for zero to raise
  ``ZeroDivisionError`` and blocks vectorisation; ``error_model="numpy"`` gives IEEE results.

``parallel=True`` was measured and lost here: a 393k-element GELU took 7.9 ms over two threads
against 0.57 ms on one (thread start-up and contention with OpenBLAS's workers); ``kernels.pair`` runs
independent halves of a larger kernel (the decode attention's queries) on one long-lived helper thread instead.
numba's ``exp`` and ``tanh`` are scalar libm calls (PyPI's llvmlite is not built with Intel's SVML, so installing
``icc_rt`` changes nothing: ``numba -s`` reports "SVML Operational: False"); kernels therefore take
transcendentals from NumPy's vectorised ufuncs or use rational approximations.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np

BACKENDS = ("numba", "numpy")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
ENV = "EMBER_KERNELS"

try:
    import numba as _numba
except ImportError:  # the `fast` extra is not installed: every kernel runs its NumPy reference
    _numba = None


def available() -> tuple[str, ...]:
    """The backends this installation can run."""
    return BACKENDS if _numba is not None else ("numpy",)


def _initial_backend() -> str:
    wanted = os.environ.get(ENV, "").strip().lower()
    if not wanted:
        return "numba" if _numba is not None else "numpy"
    if wanted not in BACKENDS:
        raise ValueError(f"${ENV}={wanted!r}: expected one of {', '.join(BACKENDS)}")
    if wanted == "numba" and _numba is None:
        raise ImportError(f"${ENV}=numba, but numba is not installed (pip install 'ember[fast]')")
    return wanted


_backend = _initial_backend()
# The reference was asked for (EMBER_KERNELS=numpy or use("numpy")), as opposed to numba merely missing: the
# GPU's kernels (ember.kernels.cuda) need no numba and step aside only when asked.
_reference_forced = os.environ.get(ENV, "").strip().lower() == "numpy"


def backend() -> str:
    """The backend kernels use now: ``"numba"`` or ``"numpy"``."""
    return _backend


def reference_forced() -> bool:
    """True when the NumPy reference was asked for everywhere (``EMBER_KERNELS=numpy`` or ``use("numpy")``)."""
    return _reference_forced


def compiled() -> bool:
    """True when the compiled kernels are in use."""
    return _backend == "numba"


@contextlib.contextmanager
def use(name: str):
    """Run the body with ``name``'s kernels (tests compare ``use("numpy")`` against ``use("numba")``)."""
    global _backend, _reference_forced
    if name not in available():
        raise ValueError(f"kernel backend {name!r} is not available here (available: {', '.join(available())})")
    previous = _backend, _reference_forced
    _backend, _reference_forced = name, name == "numpy"
    try:
        yield
    finally:
        _backend, _reference_forced = previous


def jit(fn=None, *, reassoc: bool = False, fma: bool = False):
    """numba's ``njit`` with ember's settings (IEEE division, no Python error checks, cached to disk), or
    ``None`` when numba is missing (callers then use the reference).

    ``reassoc=True`` lets LLVM reorder the function's float additions so that a sum loop vectorises: for float64
    accumulators, where any order is as accurate (``kernels.norm``'s row sums: 14 µs against 50-60 µs for a
    strictly ordered loop), and for float32 dot products whose reference (BLAS) adds in an order of its own
    anyway. ``fma=True`` also lets it fuse a multiply and an add into one FMA (one rounding instead of two):
    ``kernels.rows``'s dot products ran 1.3-1.5x slower without. Usable as ``@jit`` or ``@jit(reassoc=True)``."""
    if fn is None:
        return functools.partial(jit, reassoc=reassoc, fma=fma)
    if _numba is None:
        return None
    flags = ({"reassoc"} if reassoc else set()) | ({"contract"} if fma else set())
    return _numba.njit(error_model="numpy", cache=True, nogil=True, fastmath=flags or False)(fn)


def takes(*arrays) -> bool:
    """Whether the compiled path applies: numba on, and every array a C-contiguous float32/float64 NumPy array
    of one dtype (CuPy arrays, other dtypes and strided views go to the reference). Runs before every kernel
    call, so it is a plain loop."""
    return _fit(arrays, True)


def accepts(*arrays) -> bool:
    """``takes`` without the layout condition, for kernels that copy their input into the layout they need
    anyway (max pooling's): any strides, broadcast (zero-stride) gradients included."""
    return _fit(arrays, False)


def _fit(arrays, contiguous: bool) -> bool:
    if _backend != "numba":
        return False
    dtype = arrays[0].dtype
    if dtype not in _FLOATS:
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != dtype or (contiguous and not a.flags.c_contiguous):
            return False
    return True
