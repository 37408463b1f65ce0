"""The machine a benchmark ran on, recorded beside every figure.

Speed figures mean little without the machine: the CPU model and its cores, which BLAS NumPy loaded and
which of its kernels it picked for this CPU (OpenBLAS chooses SkylakeX or Haswell kernels when it loads),
whether ember's compiled kernels were in use, and the library versions. ``machine_info()`` gathers them as a
dict for the JSON; ``machine_line(info)`` says the speed-relevant part in one line for the README.
PyTorch is never imported here: its version comes from the installed package's metadata.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

import numpy as np

from .. import __version__ as ember_version
from .. import kernels, threads

LIBRARIES = {"numpy": "NumPy", "scipy": "SciPy", "numba": "numba", "torch": "PyTorch"}


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo (the architecture where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def usable_cores() -> int:
    """The cores this process may run on (its affinity), which a container may hold below the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def blas() -> dict:
    """NumPy's BLAS: its library, version, the kernels it picked (OpenBLAS) and its threading layer.

    From threadpoolctl, which reads the loaded library itself; without it, from NumPy's build configuration
    (which knows the library but not the kernels picked at load time)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"library": numpy_build_blas(), "version": None, "kernels": None, "threading": None,
                "source": "numpy build configuration (threadpoolctl not installed)"}
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return {"library": numpy_build_blas(), "version": None, "kernels": None, "threading": None,
                "source": "numpy build configuration (threadpoolctl found no BLAS loaded)"}
    numpy_pool = next((p for p in pools if "numpy" in p.get("filepath", "")), pools[0])
    return {"library": _library_name(numpy_pool.get("internal_api")), "version": numpy_pool.get("version"),
            "kernels": numpy_pool.get("architecture"), "threading": numpy_pool.get("threading_layer"),
            "source": "threadpoolctl"}


def _library_name(internal_api: str | None) -> str | None:
    """threadpoolctl's name for a BLAS, with the builds of one library under one name: some threadpoolctl versions
    call the OpenBLAS that NumPy and SciPy wheels bundle "scipy-openblas"."""
    return "openblas" if internal_api and "openblas" in internal_api else internal_api


def numpy_build_blas() -> str | None:
    try:
        return _library_name(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
    except Exception:  # older NumPy, or a build that does not say: not worth failing a benchmark for
        return None


def openblas_kernels() -> str:
    """The kernel family the loaded OpenBLAS picked for this CPU (e.g. SkylakeX, Haswell)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    found = {i.get("architecture") or "?" for i in threadpool_info() if _library_name(i["internal_api"]) == "openblas"}
    return ",".join(sorted(found)) or "none (NumPy's BLAS is not OpenBLAS)"


def library_version(name: str) -> str | None:
    """The installed version of ``name`` (None when it is not installed), without importing it."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def numba_version() -> str | None:
    return library_version("numba")


def library_versions() -> dict[str, str | None]:
    """Python, NumPy, SciPy, ember, numba and PyTorch (None: not installed)."""
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": library_version("scipy"),
            "ember": ember_version, "numba": numba_version(), "torch": library_version("torch")}


def kernel_backend() -> str:
    """ember's kernel backend now, and the variable that forced it, if any."""
    forced = os.environ.get(kernels.ENV)
    return f"{kernels.backend()} ({kernels.ENV}={forced})" if forced else kernels.backend()


def machine_info() -> dict:
    """Everything about the machine a result depends on, for the results JSON."""
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable_cores(),
            "architecture": platform.machine(), "avx512": has_avx512(), "openblas_kernels": openblas_kernels(),
            "blas": blas(), "blas_threads": threads.blas_threads(), "numba": numba_version(),
            "kernel_backend": kernel_backend(), "versions": library_versions()}


def blas_words(info: dict) -> str:
    """"OpenBLAS SkylakeX kernels", or the library's name where it is not OpenBLAS."""
    found = info.get("blas")
    if found is None or found.get("library") in ("openblas", None):  # results from before "blas" was recorded
        return f"OpenBLAS {info['openblas_kernels']} kernels"
    return " ".join(str(part) for part in (found["library"], found.get("version")) if part)


def machine_line(info: dict) -> str:
    """One line for the JSON's "machine" and the README: CPU, cores, BLAS kernels, numba, kernel backend."""
    numba = f"numba {info['numba']}" if info["numba"] else "numba: not installed"
    return f"{info['cpu_model']}, {info['cores']} cores, {blas_words(info)}, {numba}, " \
           f"ember kernels: {info['kernel_backend']}"


def versions_line(info: dict) -> str:
    """"NumPy 2.4.6, SciPy 1.17.1, ember 0.1.0, PyTorch 2.13.0+cpu": the libraries a run used."""
    versions = info.get("versions", {})
    names = {**LIBRARIES, "ember": "ember"}
    return ", ".join(f"{names[key]} {versions[key]}" for key in ("numpy", "scipy", "ember", "torch")
                     if versions.get(key))
