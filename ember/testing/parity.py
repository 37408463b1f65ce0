"""CPU↔device parity: run every op, every layer and one training step of each model on the CPU and on
another device from the same inputs and weights, and measure how far the device's results are.

The comparisons are norm-relative: ``max_rel = max|device − cpu| / max|cpu|`` over one quantity (an
output, a gradient, an updated parameter), so a difference is judged against the quantity's scale and
near-zero elements do not blow it up. Integer results (pooling's argmax) must be identical.

Tolerances (issue 18): float64 at round-off (1e-10), float32 1e-5 for an op or a layer and 1e-4 for a
whole training step (a step chains dozens of float32 reductions whose order differs between the
devices). Stochastic rows (dropout) draw from each device's own generator, so only their shapes and
dtypes are compared.

``ember parity`` runs it against a GPU; the test suite runs it against the GPU-free test double
``cpu:other`` (``ember.testing.device_double``) on every CI run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

import ember
from ember import backend

from . import LAYERS, OPS, build_layer, layer_input, make_inputs
from .op_table import LayerCase, OpCase
from .perturb import perturb_hyper_connections

TOLERANCE = {  # (dtype, kind) -> largest norm-relative difference allowed
    ("float64", "op"): 1e-10,
    ("float64", "step"): 1e-10,
    ("float32", "op"): 1e-5,
    ("float32", "step"): 1e-4,
}
SECTIONS = ("ops", "layers", "pooling", "steps")


@dataclass
class Check:
    """One compared quantity of one row."""

    section: str  # ops | layers | pooling | steps
    name: str  # the row: op, layer or model
    quantity: str  # output, grad[0], weight.grad, param fc.weight, argmax, ...
    dtype: str
    max_abs: float
    max_rel: float
    tolerance: float
    ok: bool
    note: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def compare(section, name, quantity, dtype, cpu, dev, kind: str = "op", exact: bool = False) -> Check:
    """Compare a CPU array with a device array (copied back) as described in the module docstring."""
    tol = 0.0 if exact else TOLERANCE[(np.dtype(dtype).name, kind)]
    a = np.asarray(cpu)
    b = np.asarray(dev if type(dev) is np.ndarray else backend.to_device(dev, backend.CPU))
    if a.shape != b.shape or a.dtype != b.dtype:
        return Check(section, name, quantity, str(dtype), np.inf, np.inf, tol, False,
                     f"cpu {a.shape} {a.dtype} vs device {b.shape} {b.dtype}")
    if a.size == 0:
        return Check(section, name, quantity, str(dtype), 0.0, 0.0, tol, True)
    if exact or a.dtype.kind not in "fc":
        same = np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if not same else 0.0
        return Check(section, name, quantity, str(dtype), diff, 0.0 if same else np.inf, 0.0, bool(same))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b) or not np.array_equal(a[np.isinf(a)], b[np.isinf(a)]):
        return Check(section, name, quantity, str(dtype), np.inf, np.inf, tol, False, "NaN/inf placement differs")
    finite = np.isfinite(a)
    diff = np.abs(a[finite].astype(np.float64) - b[finite].astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(a[finite]).max()) if diff.size else 0.0
    max_rel = max_abs / scale if scale > 0 else max_abs
    return Check(section, name, quantity, str(dtype), max_abs, max_rel, tol, max_rel <= tol)


def _shape_only(section, name, quantity, dtype, cpu, dev, note) -> Check:
    ok = tuple(cpu.shape) == tuple(dev.shape) and cpu.dtype == dev.dtype
    return Check(section, name, quantity, str(dtype), 0.0, 0.0, 0.0, ok, note)


def _stochastic(case) -> bool:
    return getattr(case, "reseed", False)


# ----------------------------------------------------------------------------- ops


def op_parity(case: OpCase, dev: backend.Device, dtype, seed: int = 3) -> list[Check]:
    """Forward and backward of one op-table row on the CPU and on ``dev``."""
    arrays = make_inputs(case, dtype, seed)
    cpu = [ember.tensor(a, requires_grad=True) for a in arrays]
    on_dev = [ember.tensor(a, device=dev, requires_grad=True) for a in arrays]
    out_cpu = _call(case.fn, cpu, case.reseed)
    with dev:
        out_dev = _call(case.fn, on_dev, case.reseed)
    cot = np.random.default_rng(seed + 1).standard_normal(out_cpu.shape).astype(dtype)
    out_cpu.backward(cot)
    with dev:
        out_dev.backward(ember.tensor(cot, device=dev))
    quantities = [("output", out_cpu, out_dev)]
    quantities += [(f"grad[{i}]", a.grad, b.grad) for i, (a, b) in enumerate(zip(cpu, on_dev))]
    return _checks("ops", case.name, dtype, quantities, stochastic=case.reseed)


def _call(fn, tensors, reseed: bool):
    if reseed:
        ember.manual_seed(0)
    return fn(*tensors)


def _checks(section, name, dtype, quantities, kind="op", stochastic=False) -> list[Check]:
    checks = []
    for quantity, a, b in quantities:
        if (a is None) != (b is None):
            checks.append(Check(section, name, quantity, str(dtype), np.inf, np.inf, 0.0, False,
                                f"{'device' if b is None else 'cpu'} result missing"))
            continue
        if a is None:
            continue
        a_data, b_data = _data(a), _data(b)
        if backend.device_of(b_data) == backend.CPU:
            checks.append(Check(section, name, quantity, str(dtype), np.inf, np.inf, 0.0, False,
                                "the device's result is on the CPU"))
        elif stochastic:
            checks.append(_shape_only(section, name, quantity, dtype, a_data, b_data,
                                      "random draws differ by device: shapes and dtypes only"))
        else:
            checks.append(compare(section, name, quantity, dtype, a_data, b_data, kind))
    return checks


def _data(t):
    return t.data if isinstance(t, ember.Tensor) else t


# ----------------------------------------------------------------------------- layers


def layer_parity(case: LayerCase, dev: backend.Device, dtype, seed: int = 1) -> list[Check]:
    """A layer's output, input gradient, parameter gradients and buffers on the CPU and on ``dev``."""
    cpu_module = build_layer(case, dtype)
    dev_module = build_layer(case, dtype).to(dev)
    x_np = layer_input(case, dtype, seed)
    grad_input = not case.integer_input
    x_cpu = ember.tensor(x_np, requires_grad=grad_input)
    x_dev = ember.tensor(x_np, device=dev, requires_grad=grad_input)
    out_cpu = cpu_module(x_cpu)
    with dev:
        out_dev = dev_module(x_dev)
    cot = np.random.default_rng(seed + 1).standard_normal(out_cpu.shape).astype(dtype)
    out_cpu.backward(cot)
    out_dev.backward(ember.tensor(cot, device=dev))
    quantities = [("output", out_cpu, out_dev)]
    if grad_input:
        quantities.append(("input.grad", x_cpu.grad, x_dev.grad))
    dev_params = dict(dev_module.named_parameters())
    quantities += [(f"{n}.grad", p.grad, dev_params[n].grad) for n, p in cpu_module.named_parameters()]
    dev_buffers = dict(dev_module.named_buffers())
    quantities += [(f"buffer {n}", b, dev_buffers[n]) for n, b in cpu_module.named_buffers()]
    return _checks("layers", case.name, dtype, quantities)


# ----------------------------------------------------------------------------- pooling argmax


def pooling_parity(dev: backend.Device, dtype, seed: int = 0) -> list[Check]:
    """Max pooling's values, argmax and gradient, on random data and on windows full of ties (ReLU zeros)."""
    rng = np.random.default_rng(seed)
    inputs = {
        "random": rng.standard_normal((4, 3, 13, 11)),
        "ties": np.maximum(rng.integers(-3, 2, size=(4, 3, 13, 11)), 0),
        "constant": np.ones((2, 2, 8, 8)),
    }
    checks = []
    for label, x_np in inputs.items():
        for kernel, stride, padding, dilation, ceil in ((2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)):
            name = f"max_pool2d {label} k{kernel} s{stride} p{padding} d{dilation}{' ceil' if ceil else ''}"
            x_np = x_np.astype(dtype)
            results = []
            for device in (backend.CPU, dev):
                x = ember.tensor(x_np, device=device, requires_grad=True)
                y, idx = ember.nn.functional.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceil,
                                                         return_indices=True)
                y.backward(ember.tensor(np.ones(y.shape, dtype=dtype), device=device))
                results.append((y, idx, x.grad))
            (y_c, i_c, g_c), (y_d, i_d, g_d) = results
            checks += [
                compare("pooling", name, "output", dtype, y_c.data, y_d.data, exact=True),
                compare("pooling", name, "argmax", dtype, i_c.data, i_d.data, exact=True),
                compare("pooling", name, "input.grad", dtype, g_c.data, g_d.data, exact=True),
            ]
    return checks


# ----------------------------------------------------------------------------- training steps

# A first Adam step moves each parameter by about lr·g/(|g| + eps): with the default eps a gradient near
# zero whose round-off differs in sign between the devices moves it by ±lr, so the step would compare
# the noise. eps = 1e-3 keeps the update smooth in the gradient (derivative at most lr/eps).
STEP_ADAM_EPS = 1e-3
STEP_MODELS = {  # name -> (model config, input maker)
    "mlp": ({"sizes": (64, 32, 16, 10)}, lambda rng, n: rng.standard_normal((n, 64))),
    "lenet": ({}, lambda rng, n: rng.standard_normal((n, 1, 28, 28))),
    "kan": ({"widths": (16, 8, 10), "grid_size": 5}, lambda rng, n: rng.uniform(-1, 1, (n, 16))),
    "gpt": ({"block_size": 16, "vocab_size": 10, "n_layer": 2, "n_head": 2, "n_embd": 32}, None),
    "gpt-mhc": ({"block_size": 16, "vocab_size": 10, "n_layer": 2, "n_head": 2, "n_embd": 32, "residual": "mhc",
                 "streams": 3}, None),
}


def step_parity(model: str, dev: backend.Device, dtype, seed: int = 0, batch: int = 8) -> list[Check]:
    """One Adam training step of a small model: loss, every gradient and every updated parameter."""
    config, make_input = STEP_MODELS[model]
    rng = np.random.default_rng(seed)
    gpt = model.startswith("gpt")
    if gpt:
        x_np = rng.integers(0, config["vocab_size"], size=(batch, config["block_size"]))
        y_np = rng.integers(0, config["vocab_size"], size=(batch, config["block_size"]))
    else:
        x_np = make_input(rng, batch).astype(dtype)
        y_np = rng.integers(0, 10, size=batch)
    results = []
    for device in (backend.CPU, dev):
        ember.manual_seed(seed)
        net = ember.models.build("gpt" if gpt else model, config)
        perturb_hyper_connections(net, seed)  # at the start the mixes' gradients are exactly zero: compare more
        net.to(dtype=dtype).to(device)
        opt = ember.optim.Adam(net.parameters(), lr=1e-3, eps=STEP_ADAM_EPS)
        x, y = ember.tensor(x_np, device=device), ember.tensor(y_np, device=device)
        with device:
            if gpt:
                _, loss = net(x, y)
            else:
                loss = ember.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            grads = {n: p.grad.data for n, p in net.named_parameters()}
            opt.step()
        results.append((loss.data, grads, {n: p.data for n, p in net.named_parameters()}))
    (loss_c, grads_c, params_c), (loss_d, grads_d, params_d) = results
    quantities = [("loss", loss_c, loss_d)]
    quantities += [(f"{n}.grad", g, grads_d[n]) for n, g in grads_c.items()]
    quantities += [(f"{n} after step", p, params_d[n]) for n, p in params_c.items()]
    return _checks("steps", model, dtype, quantities, kind="step")


# ----------------------------------------------------------------------------- everything


def run(dev: backend.Device, dtypes=(np.float64, np.float32), sections=SECTIONS,
        progress: Callable[[str], None] | None = None) -> Iterator[Check]:
    """Every check of every section, for each dtype; a row that raises becomes a failed check naming the error."""
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        jobs = []
        if "ops" in sections:
            jobs += [("ops", case.name, lambda c=case, d=dtype: op_parity(c, dev, d)) for case in OPS]
        if "layers" in sections:
            jobs += [("layers", case.name, lambda c=case, d=dtype: layer_parity(c, dev, d)) for case in LAYERS]
        if "pooling" in sections:
            jobs.append(("pooling", "max_pool2d", lambda d=dtype: pooling_parity(dev, d)))
        if "steps" in sections:
            jobs += [("steps", m, lambda m=m, d=dtype: step_parity(m, dev, d)) for m in STEP_MODELS]
        for section, name, job in jobs:
            if progress:
                progress(f"{section} {name} {dtype.name}")
            try:
                yield from job()
            except Exception as exc:  # a row that fails on the device is a parity failure, not a crash
                yield Check(section, name, "raised", dtype.name, np.inf, np.inf, 0.0, False,
                            f"{type(exc).__name__}: {exc}"[:300])
