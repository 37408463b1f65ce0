"""Process settings that keep NumPy fast on small CPUs, applied once when ember is first imported.

Two pathologies measured on the 2-core machines ember targets (see benchmarks/README.md):

1. OpenBLAS worker threads spin for ~2^28 cycles (0.1 s) after every GEMM. Training calls a
   GEMM every few hundred microseconds, so the worker never sleeps, and on a 2-core VM its
   spinning halves the speed of the main thread's memory-bound NumPy work (im2col, col2im,
   elementwise ops ran 3-5x slower). ``OPENBLAS_THREAD_TIMEOUT=4`` makes it sleep at once.
   OpenBLAS reads it when NumPy loads, so this only takes effect if ember is imported before
   NumPy (the ``ember`` command always is); otherwise set it in the environment.
2. glibc returns freed blocks above 128 KiB to the OS and maps them again on the next
   allocation, so every training step page-faults its activations in afresh (a third of a
   LeNet-5 step). Raising the mmap and trim thresholds keeps freed memory for reuse, the way
   PyTorch's caching allocators do on the GPU.

Set ``EMBER_NO_RUNTIME_TUNING=1`` to leave the process untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum on 64-bit
TRIM_THRESHOLD = 512 << 20


def configure() -> dict:
    """Apply the settings (idempotent); returns what was done, for ``ember sysinfo``-style reporting."""
    done = {}
    if os.environ.get("EMBER_NO_RUNTIME_TUNING"):
        return done
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
        done["OPENBLAS_THREAD_TIMEOUT"] = os.environ["OPENBLAS_THREAD_TIMEOUT"]
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            done["mallopt"] = bool(ok)
        except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
            done["mallopt"] = False
    return done


applied = configure()
