"""The machine description every result carries: each field checked against an independent source."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import kernels
from ember.benchmarking import machine_info, machine_line, versions_line

CPUINFO = Path("/proc/cpuinfo")


@pytest.fixture(scope="module")
def info() -> dict:
    return machine_info()


@pytest.mark.skipif(not CPUINFO.exists(), reason="no /proc/cpuinfo (not Linux)")
def test_the_cpu_and_its_cores(info):
    names = [line.split(":", 1)[1].strip() for line in CPUINFO.read_text().splitlines()
             if line.startswith("model name")]
    if names:
        assert info["cpu_model"] == names[0]
    assert info["cores"] == os.cpu_count() and info["usable_cores"] == len(os.sched_getaffinity(0))
    assert info["avx512"] == ("avx512f" in CPUINFO.read_text().split())
    assert info["architecture"] == platform.machine()


def test_the_blas_matches_numpys_build_configuration(info):
    """The library NumPy was built against, and its version, seen from the loaded library at run time."""
    built = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas = info["blas"]
    assert blas["source"] in ("threadpoolctl", "numpy build configuration (threadpoolctl not installed)")
    if "openblas" in built["name"]:  # "openblas" or "scipy-openblas" (the wheels' build): one library, one name
        assert blas["library"] == "openblas"
        if blas["source"] == "threadpoolctl":  # only the loaded library knows its version and kernels
            assert blas["version"] == built["version"]
            assert blas["kernels"] and blas["kernels"] == info["openblas_kernels"]  # e.g. SkylakeX, Haswell


def test_library_versions(info):
    versions = info["versions"]
    assert versions["numpy"] == np.__version__ and versions["ember"] == ember.__version__
    assert versions["python"] == platform.python_version()
    scipy = pytest.importorskip("scipy")
    assert versions["scipy"] == scipy.__version__
    torch = pytest.importorskip("torch")
    assert versions["torch"] == torch.__version__


def test_the_machine_line_says_cpu_cores_blas_kernels_and_ember_kernels(info):
    line = machine_line(info)
    assert line.startswith(f"{info['cpu_model']}, {info['cores']} cores, ")
    assert f"ember kernels: {kernels.backend()}" in line
    if info["blas"]["library"] == "openblas":
        assert f"OpenBLAS {info['openblas_kernels']} kernels" in line
    assert (f"numba {info['numba']}" if info["numba"] else "numba: not installed") in line


def test_a_blas_other_than_openblas_is_named_as_it_is(info):
    mkl = {**info, "blas": {"library": "mkl", "version": "2024.1", "kernels": None}, "openblas_kernels": "none"}
    line = machine_line(mkl)
    assert "mkl 2024.1" in line and "OpenBLAS" not in line


def test_results_from_before_the_blas_field_keep_their_line(info):
    old = {k: v for k, v in info.items() if k not in ("blas", "versions")}
    assert f"OpenBLAS {info['openblas_kernels']} kernels" in machine_line(old)


def test_the_versions_line_names_each_library(info):
    line = versions_line(info)
    assert f"NumPy {np.__version__}" in line and f"ember {ember.__version__}" in line
    if info["versions"]["torch"]:
        assert f"PyTorch {info['versions']['torch']}" in line


def test_describing_the_machine_never_imports_torch():
    """ember/ never imports PyTorch: its version comes from the package metadata."""
    code = "import sys, ember.benchmarking as b; b.machine_info(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"
