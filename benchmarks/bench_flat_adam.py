"""Issue 12's "one flat parameter buffer": per-tensor fused Adam calls against one call over a flat buffer.

Three contenders, interleaved, 200 rounds, medians (`python benchmarks/bench_flat_adam.py`): the fused
kernel called once per parameter (what ember does), one call over a flat buffer into which the gradients
are first copied (what a flat optimizer needs while backward writes each gradient as its own array), and
one call with no copy (the bound if backward wrote every gradient straight into a view of the buffer).
Shapes: the MNIST MLP 784-256-128-10 and nanoGPT's CPU-recipe GPT.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ember.kernels import optim as K  # noqa: E402

F32 = np.float32
MLP = [(256, 784), (256,), (128, 256), (128,), (10, 128), (10,)]
GPT = [(65, 128), (64, 128)] + [(128,), (384, 128), (128, 128), (128,), (512, 128), (128, 512)] * 4 + [(128,)]
ARGS = (F32(0.9), F32(0.999), F32(1e-3), F32(1e-8), F32(1.0), F32(0.0))  # b1, b2, step, eps, decay, wd


def contenders(shapes):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(F32) for s in shapes]
    grads = [rng.standard_normal(s).astype(F32) for s in shapes]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    n = sum(p.size for p in params)
    flat_p, flat_g, flat_m, flat_v = (np.zeros(n, F32) for _ in range(4))

    def per_tensor():
        for p, g, (m, v) in zip(params, grads, moments):
            K.adam(p, g, m, v, *ARGS)

    def flat_with_copy():
        np.concatenate([g.reshape(-1) for g in grads], out=flat_g)
        K.adam(flat_p, flat_g, flat_m, flat_v, *ARGS)

    def flat_views():
        K.adam(flat_p, flat_g, flat_m, flat_v, *ARGS)

    return n, {"per-tensor": per_tensor, "flat, gradients copied in": flat_with_copy, "flat, no copy": flat_views}


def main() -> None:
    for name, shapes in (("MLP", MLP), ("GPT", GPT)):
        n, fns = contenders(shapes)
        times = {k: [] for k in fns}
        for fn in fns.values():
            fn()
        for _ in range(200):
            for key, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        cells = ", ".join(f"{k} {np.median(v) * 1e6:.0f} µs" for k, v in times.items())
        print(f"{name}: {n} parameters in {len(shapes)} tensors: {cells}")


if __name__ == "__main__":
    main()
