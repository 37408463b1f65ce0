"""benchmarks/bench_serve.py's memory figure covers the whole server: the HTTP process and the engine's process it
spawns (which holds the model and the KV cache), not the HTTP process alone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
bench = pytest.importorskip("bench_serve")

CHILD = "import time; b = bytearray(80 << 20); time.sleep(60)"
HOLDS_80_MB = ("import subprocess, sys, time\n"
               f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}])\n"
               "print(child.pid, flush=True)\n"
               "time.sleep(60)\n")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_resident_memory_counts_the_children_of_the_server():
    parent = subprocess.Popen([sys.executable, "-c", HOLDS_80_MB], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 20
        while bench.rss_mb(child) < 80 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bench.process_tree(parent.pid) == [parent.pid, child]
        alone = bench.rss_mb(child)
        assert alone >= 80
        assert bench.rss_mb(parent.pid) >= alone + 5  # the parent's own interpreter on top
    finally:
        for pid in bench.process_tree(parent.pid)[::-1]:
            subprocess.run(["kill", str(pid)], check=False)
        parent.wait(10)
