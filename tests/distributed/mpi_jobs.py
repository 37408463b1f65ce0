"""Running a program under ``mpirun`` on this machine (127.0.0.1), and skipping where MPI is not installed."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ember.distributed.comm as comm

PROGRAMS = Path(__file__).parent / "programs"
REPO = Path(__file__).resolve().parents[2]
# the mpirun of mpi4py's MPI: the PyPI wheels put it beside the interpreter
MPIRUN = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")


def mpi_missing() -> str | None:
    """Why the multi-process tests cannot run here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'ember[mpi]')"
    if MPIRUN is None:
        return "no mpirun on PATH or beside the interpreter (pip install 'ember[mpi]' installs MPICH's)"
    return None


needs_mpi = pytest.mark.skipif(mpi_missing() is not None, reason=mpi_missing() or "")


def _local_host_flags(np_: int) -> list[str]:
    """Keep the job on 127.0.0.1, in the launcher's own syntax (MPICH's Hydra or Open MPI's)."""
    version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True, timeout=30).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        root = ["--allow-run-as-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        return [*root, "--host", f"127.0.0.1:{np_}"]
    return ["-hosts", "127.0.0.1"]


def mpi_env(**extra) -> dict:
    """The environment of a launched job: this checkout importable; one BLAS thread per rank (2 ranks share the
    2 cores of the test machine)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1", **extra}
    for name in comm.LAUNCHER_RANK_VARS + comm.LAUNCHER_SIZE_VARS:  # a pytest run inside a job must not leak it
        env.pop(name, None)
    return env


def run_mpi(args: list[str], np_: int = 2, timeout: float = 90, cwd=None, **env) -> subprocess.CompletedProcess:
    """``mpirun -np N <args>`` with a timeout; ``args`` starts with the program (a file in programs/ or a
    command). Returns the finished process (stdout and stderr captured as text)."""
    program = PROGRAMS / args[0]
    command = [sys.executable, str(program), *args[1:]] if program.is_file() else list(args)
    launch = [MPIRUN, *_local_host_flags(np_), "-np", str(np_), *command]
    return subprocess.run(launch, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=mpi_env(**env))


def run_mpi_per_rank(commands: list[list[str]], cwds: list[Path], timeout: float = 90,
                     **env) -> subprocess.CompletedProcess:
    """One process per command, each in its own working folder (MPMD: ``mpirun -np 1 -wdir A cmd : ...``)."""
    launch = [MPIRUN, *_local_host_flags(len(commands))]
    for i, (command, cwd) in enumerate(zip(commands, cwds)):
        launch += ([":"] if i else []) + ["-np", "1", "-wdir", str(cwd), *command]
    return subprocess.run(launch, capture_output=True, text=True, timeout=timeout, env=mpi_env(**env))


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit status {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
