"""The fused optimizer kernels against their NumPy references: bit for bit per array (random and special
values, float32 and float64, odd and empty shapes), and whole training runs (parameters, state_dict, resume,
version counters) identical under ``kernels.use("numpy")`` and ``kernels.use("numba")``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import kernels, optim
from ember.models import KAN, MLP, KANConfig, MLPConfig

numba = pytest.importorskip("numba")

from ember.kernels import optim as K  # noqa: E402
from ember.optim import adam as adam_module  # noqa: E402
from ember.optim import sgd as sgd_module  # noqa: E402

DTYPES = [np.float32, np.float64]
SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (1001,)]
BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def assert_same_bits(ours, reference, what=""):
    """Equal to the last bit (signed zeros included); NaN where the reference has NaN (payloads not compared)."""
    assert ours.dtype == reference.dtype and ours.shape == reference.shape, what
    nan = np.isnan(reference)
    np.testing.assert_array_equal(np.isnan(ours), nan, err_msg=f"{what}: NaN positions")
    bits = BITS[reference.dtype]
    np.testing.assert_array_equal(ours[~nan].view(bits), reference[~nan].view(bits), err_msg=what)


def random_arrays(rng, shape, dtype, special=False):
    """p, g, M and V >= 0 of ``shape``; with ``special``, zeros of both signs, infinities, NaN and extremes too."""
    p, g, M = (rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 1e3]) for _ in range(3))
    V = rng.standard_normal(shape) ** 2
    arrays = [np.asarray(a, dtype=dtype) for a in (p, g, M, V)]
    if special and arrays[0].size:
        # subnormals of both dtypes among them (1e-45 is float32's, 1e-310 and -5e-324 float64's): flushed to +0
        values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 3e38, 1e-45, 1e-310, -5e-324],
                          dtype=dtype)
        for a in arrays[:3]:
            flat = a.reshape(-1)
            flat[:] = rng.choice(values, size=flat.size)
    return arrays


# ----------------------------------------------------------------------------- Adam, per array


@pytest.mark.parametrize("special", [False, True], ids=["random", "special_values"])
@pytest.mark.parametrize("mode", ["plain", "l2", "decoupled"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_adam_kernel_is_the_reference_bit_for_bit(dtype, shape, mode, special):
    c = np.dtype(dtype).type
    for seed in range(3):
        rng = np.random.default_rng(seed)
        p, g, M, V = random_arrays(rng, shape, dtype, special)
        b1, b2 = rng.uniform(0.5, 0.99), rng.uniform(0.9, 0.9999)
        step, eps = rng.uniform(1e-4, 1e-1), rng.uniform(1e-9, 1e-6)
        wd = rng.uniform(1e-3, 0.5) if mode == "l2" else 0.0
        decay = 1.0 - rng.uniform(1e-4, 1e-2) if mode == "decoupled" else 1.0
        ours = [a.copy() for a in (p, M, V)]
        with np.errstate(all="ignore"):
            reference_g = g + wd * p if wd else g  # Adam.step adds the L2 term before the passes
            _adam_reference(p, reference_g, M, V, b1, b2, step, eps, decay)
            K.adam(ours[0], g, ours[1], ours[2], c(b1), c(b2), c(step), c(eps), c(decay), c(wd),
                   c(np.finfo(dtype).tiny))
        for name, a, b in zip("pMV", ours, (p, M, V)):
            assert_same_bits(a, b, f"{name}, seed {seed}")


def _adam_reference(p, g, M, V, b1, b2, step, eps, decay):
    adam_module._adam_update(p, g, M, V, np.empty_like(p), b1, b2, step, eps, decay, np)


def test_adam_kernel_moves_every_element_by_lr_on_the_first_step():
    """Hand-derived: at t=1 with eps=0, m̂/sqrt(v̂) = sign(g), so each element moves by lr exactly (to round-off)."""
    p = ember.tensor(np.array([1.0, -2.0, 3.0, 0.5], np.float32), requires_grad=True)
    opt = optim.Adam([p], lr=0.01, eps=0.0)
    p.grad = ember.tensor(np.array([0.3, -7.0, 1e-3, -2.5], np.float32))
    with kernels.use("numba"):
        opt.step()
    np.testing.assert_allclose(p.numpy(), [0.99, -1.99, 2.99, 0.51], rtol=2e-7)


# ----------------------------------------------------------------------------- SGD, per array


SGD_CONFIGS = {
    "plain": dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
    "weight_decay": dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.05, nesterov=False),
    "momentum": dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
    "dampening_wd": dict(lr=0.03, momentum=0.5, dampening=0.3, weight_decay=0.2, nesterov=False),
    "nesterov_wd": dict(lr=0.03, momentum=0.7, dampening=0.0, weight_decay=0.01, nesterov=True),
    "full_dampening": dict(lr=0.03, momentum=0.7, dampening=1.0, weight_decay=0.0, nesterov=False),
}


@pytest.mark.parametrize("special", [False, True], ids=["random", "special_values"])
@pytest.mark.parametrize("config", SGD_CONFIGS.values(), ids=SGD_CONFIGS.keys())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_sgd_kernels_are_the_reference_bit_for_bit(dtype, shape, config, special):
    hyper = tuple(config[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov"))
    for seed in range(2):
        rng = np.random.default_rng(seed)
        p, _, _, _ = random_arrays(rng, shape, dtype, special)
        ours, reference_state, our_state = p.copy(), {}, {}
        for step in range(3):  # the first step makes the momentum buffer, the next ones update it
            g = random_arrays(rng, shape, dtype, special)[1]
            with np.errstate(all="ignore"):
                sgd_module._reference_update(p, g, reference_state, *hyper)
                sgd_module._fused_update(ours, g, our_state, *hyper)
            assert_same_bits(ours, p, f"p, seed {seed}, step {step}")
            assert set(our_state) == set(reference_state)
            if "momentum_buffer" in reference_state:
                assert_same_bits(our_state["momentum_buffer"], reference_state["momentum_buffer"], "momentum buffer")


# ----------------------------------------------------------------------------- whole runs, both backends


class Spy:
    """Counts the calls of the fused kernels and of the NumPy references, to know which path a run took."""

    def __init__(self, monkeypatch):
        self.calls = {"fused": 0, "reference": 0}
        for module, name, path in [(K, "adam", "fused"), (K, "sgd", "fused"), (K, "sgd_momentum", "fused"),
                                   (adam_module, "_adam_update", "reference"),
                                   (sgd_module, "_reference_update", "reference")]:
            monkeypatch.setattr(module, name, self._counting(getattr(module, name), path))

    def _counting(self, fn, path):
        def wrapper(*args, **kwargs):
            self.calls[path] += 1
            return fn(*args, **kwargs)
        return wrapper


def tiny_batches(seed=0, n_batches=6, features=12, classes=4, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_batches, 16, features)).astype(dtype), rng.integers(0, classes, (n_batches, 16))


def mlp(dtype=np.float32):
    ember.manual_seed(123)
    model = MLP(MLPConfig(sizes=(12, 10, 4)))
    return model.double() if dtype == np.float64 else model


def train(model, opt, batches, steps, before_forward=None, before_step=None, backend="numpy"):
    """Cross-entropy steps on ``batches``, the optimizer's on ``backend``. Everything else runs on the NumPy
    reference (other ops' kernels may round differently), so runs differ by the optimizer step alone. The hooks
    (called with the step index and the model) may change the model before the forward pass or its gradients
    before the optimizer step."""
    xs, ys = batches
    for i in steps:
        with kernels.use("numpy"):
            if before_forward is not None:
                before_forward(i, model)
            opt.zero_grad()
            F.cross_entropy(model(ember.tensor(xs[i])), ember.tensor(ys[i])).backward()
            if before_step is not None:
                before_step(i, model)
        with kernels.use(backend):
            opt.step()


def run_on(backend, make_model, make_optimizer, batches, steps=range(6), **hooks):
    """The model and optimizer after ``steps`` with the optimizer on ``backend``."""
    model = make_model()
    opt = make_optimizer(model)
    train(model, opt, batches, steps, backend=backend, **hooks)
    return model, opt


def assert_same_runs(make_model, make_optimizer, batches, monkeypatch, strided_updates=lambda: 0, **hooks):
    """The numba run equals the NumPy run bit for bit (parameters and state_dict), every update fused but
    ``strided_updates()`` (of non-contiguous parameters, which the kernels do not take)."""
    spy = Spy(monkeypatch)
    reference, ref_opt = run_on("numpy", make_model, make_optimizer, batches, **hooks)
    assert spy.calls["fused"] == 0 and spy.calls["reference"] > 0
    reference_calls, spy.calls["reference"] = spy.calls["reference"], 0
    ours, our_opt = run_on("numba", make_model, make_optimizer, batches, **hooks)
    assert spy.calls == {"fused": reference_calls - strided_updates(), "reference": strided_updates()}
    for (name, a), (_, b) in zip(ours.named_parameters(), reference.named_parameters()):
        assert_same_bits(a.numpy(), b.numpy(), name)
    assert_same_state_dicts(our_opt.state_dict(), ref_opt.state_dict())
    start = make_model()
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(ours.parameters(), start.parameters()))


def assert_same_state_dicts(ours, reference):
    assert ours["param_groups"] == reference["param_groups"]
    assert set(ours["state"]) == set(reference["state"])
    for i, state in reference["state"].items():
        assert set(ours["state"][i]) == set(state), f"state keys of parameter {i}"
        for key, value in state.items():
            if hasattr(value, "shape"):
                assert_same_bits(ours["state"][i][key], value, f"state {key} of parameter {i}")
            else:
                assert ours["state"][i][key] == value, f"state {key} of parameter {i}"


RUNS = {
    "adam": lambda m: optim.Adam(m.parameters(), lr=1e-2),
    "adam_l2": lambda m: optim.Adam(m.parameters(), lr=1e-2, weight_decay=1e-3),
    "adamw": lambda m: optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.8, 0.95)),
    "sgd": lambda m: optim.SGD(m.parameters(), lr=0.1),
    "sgd_weight_decay": lambda m: optim.SGD(m.parameters(), lr=0.1, weight_decay=1e-2),
    "sgd_momentum": lambda m: optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
    "sgd_dampening": lambda m: optim.SGD(m.parameters(), lr=0.1, momentum=0.9, dampening=0.2, weight_decay=1e-3),
    "sgd_nesterov_wd": lambda m: optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam_two_groups": lambda m: optim.Adam(two_groups(m, 2e-2), lr=1e-2, weight_decay=1e-3),
    "adamw_two_groups": lambda m: optim.AdamW(two_groups(m, 3e-2), lr=1e-2),
    "sgd_two_groups": lambda m: optim.SGD(two_groups(m, 0.2), lr=0.05, momentum=0.9),
}


def two_groups(model, first_lr):
    params = list(model.parameters())
    return [{"params": params[:2], "lr": first_lr}, {"params": params[2:]}]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("make_optimizer", RUNS.values(), ids=RUNS.keys())
def test_training_runs_are_identical_on_both_backends(make_optimizer, dtype, monkeypatch):
    assert_same_runs(lambda: mlp(dtype), make_optimizer, tiny_batches(dtype=dtype), monkeypatch)


@pytest.mark.parametrize("make_optimizer", [RUNS["adam_l2"], RUNS["sgd_nesterov_wd"]], ids=["adam", "sgd"])
def test_parameters_skipped_on_some_steps_keep_their_own_step_counts(make_optimizer, monkeypatch):
    """A parameter without a gradient on a step is left alone; Adam's per-parameter step counts then differ
    inside a group, so the kernel's constants (cached per step count) must follow each parameter's own."""

    def drop_a_bias_gradient(i, model):
        if i in (1, 3, 4):
            model.net[1].bias.grad = None

    assert_same_runs(mlp, make_optimizer, tiny_batches(), monkeypatch, before_step=drop_a_bias_gradient)


def test_a_group_mixing_float32_and_float64_parameters(monkeypatch):
    """The kernel's constants are per dtype: a float64 parameter next to float32 ones gets float64 constants."""

    def make_model():
        model = mlp()
        model.net[3].to(dtype=ember.float64)  # the last Linear in float64
        return model

    spy = Spy(monkeypatch)
    results = {}
    for backend in ("numpy", "numba"):
        with kernels.use(backend):
            model = make_model()
            opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
            rng = np.random.default_rng(0)
            for _ in range(3):
                for p in model.parameters():
                    p.grad = ember.tensor(rng.standard_normal(p.shape).astype(p.dtype))
                opt.step()
            results[backend] = (model, opt)
    assert spy.calls["fused"] == 3 * 4
    assert {p.dtype for p in results["numba"][0].parameters()} == {ember.float32, ember.float64}
    for (name, a), (_, b) in zip(results["numba"][0].named_parameters(), results["numpy"][0].named_parameters()):
        assert_same_bits(a.numpy(), b.numpy(), name)
    assert_same_state_dicts(results["numba"][1].state_dict(), results["numpy"][1].state_dict())


def kan_model():
    ember.manual_seed(7)
    return KAN(KANConfig(widths=(12, 6, 4), grid_size=3))


@pytest.mark.parametrize("make_optimizer", [RUNS["adam_l2"], RUNS["adamw"], RUNS["sgd_momentum"]],
                         ids=["adam", "adamw", "sgd_momentum"])
def test_kan_with_a_grid_extension_mid_training(make_optimizer, monkeypatch):
    """extend_grid replaces spline_weight's array with a bigger one; the optimizer keeps going and restarts
    that parameter's state (Adam's moments and step count, SGD's momentum) on both backends alike. The refit
    arrays are strided today (not C-contiguous), so their updates after the extension take the reference."""
    xs, ys = tiny_batches()
    shapes, strided = [], []

    def extend_at_step_3(i, model):
        if i == 3:
            model.extend_grid(6, ember.tensor(xs[0]))
            shapes.append(model.layers[0].spline_weight.shape)
            strided.append(sum(not p.data.flags.c_contiguous for p in model.parameters()))

    assert_same_runs(kan_model, make_optimizer, (xs, ys), monkeypatch, before_forward=extend_at_step_3,
                     strided_updates=lambda: strided[-1] * 3)  # steps 3, 4 and 5
    assert shapes[0][-1] == 6 + 3  # grid_size + spline_order coefficients: the shape did change


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sgd_momentum_restarts_for_a_reshaped_parameter(backend):
    """After a grid extension the momentum buffer is the new gradient itself (the first-step rule)."""
    xs, ys = tiny_batches()
    model = kan_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train(model, opt, (xs, ys), range(2), backend=backend)
    weight = model.layers[0].spline_weight
    old_shape = weight.shape
    captured = {}

    def extend(i, model):
        model.extend_grid(6, ember.tensor(xs[0]))

    def capture(i, model):
        captured.update(gradient=weight.grad.numpy().copy(), before=weight.numpy().copy())

    train(model, opt, (xs, ys), [2], before_forward=extend, before_step=capture, backend=backend)
    assert weight.shape != old_shape
    np.testing.assert_array_equal(opt.state[id(weight)]["momentum_buffer"], captured["gradient"])
    np.testing.assert_array_equal(weight.numpy(), captured["before"] - np.float32(0.1) * captured["gradient"])


# ----------------------------------------------------------------------------- what goes to the reference


def test_strided_and_misshaped_gradients_take_the_reference(monkeypatch):
    """A non-contiguous gradient or one that broadcasts (shape (1,) for a (3,) parameter) is the reference's."""
    spy = Spy(monkeypatch)
    results = []
    for backend in ("numpy", "numba"):
        with kernels.use(backend):
            a = ember.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
            b = ember.tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)
            opt = optim.AdamW([a, b], lr=0.1)
            a.grad = ember.Tensor(np.zeros((2, 3), np.float32))
            a.grad.data = np.arange(6, dtype=np.float32).reshape(3, 2).T  # a transposed view, as an op may give
            b.grad = ember.Tensor(np.array([0.5], np.float32))
            assert not a.grad.data.flags.c_contiguous
            opt.step()
            results.append((a.numpy().copy(), b.numpy().copy()))
    assert spy.calls == {"fused": 0, "reference": 4}
    for ours, reference in zip(results[1], results[0]):
        assert_same_bits(ours, reference)


def test_float16_parameters_take_the_reference(monkeypatch):
    spy = Spy(monkeypatch)
    p = ember.tensor(np.ones(3, np.float16), requires_grad=True)
    p.grad = ember.tensor(np.full(3, 0.5, np.float16))
    with kernels.use("numba"):
        optim.SGD([p], lr=0.5, momentum=0.9).step()
    assert spy.calls == {"fused": 0, "reference": 1}
    np.testing.assert_array_equal(p.numpy(), np.full(3, 0.75, np.float16))


# ----------------------------------------------------------------------------- in place, versions, resume


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
                                  lambda ps: optim.AdamW(ps, lr=0.1),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: optim.SGD(ps, lr=0.1)], ids=["adam", "adamw", "sgd_momentum", "sgd"])
def test_kernel_step_updates_in_place_and_bumps_versions(make):
    """The step writes into the same arrays and counts as an in-place write: a graph that saved a parameter
    before the step refuses to backward through it afterwards (as PyTorch does)."""
    with kernels.use("numba"):
        layer = ember.nn.Linear(3, 2)
        opt = make(layer.parameters())
        x = ember.tensor(np.array([[1.0, 2.0, 3.0]], np.float32), requires_grad=True)
        layer(x).sum().backward()
        stale = (layer(x) ** 2).sum()  # saved the weight for x's gradient
        arrays = [p.data for p in layer.parameters()]
        versions = [p._version for p in layer.parameters()]
        opt.step()
        assert [p.data is a for p, a in zip(layer.parameters(), arrays)] == [True, True]
        assert [p._version for p in layer.parameters()] == [v + 1 for v in versions]
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            stale.backward()


RESUME = {
    "adam": lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1, betas=(0.8, 0.95)),
    "sgd_nesterov_wd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
}


@pytest.mark.parametrize("first, second", [("numpy", "numba"), ("numba", "numpy"), ("numba", "numba")])
@pytest.mark.parametrize("make", RESUME.values(), ids=RESUME.keys())
def test_resume_across_backends_is_bit_exact(make, first, second):
    """A state saved by one backend and loaded (after a round trip through copies) by the other continues the
    straight run to the last bit: the two paths compute the same numbers from the same saved state."""
    batches = tiny_batches()
    straight = mlp()
    train(straight, make(straight.parameters()), batches, range(6))
    model = mlp()
    opt = make(model.parameters())
    train(model, opt, batches, range(3), backend=first)
    weights = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    saved = copy.deepcopy(opt.state_dict())
    ember.manual_seed(999)
    resumed = MLP(MLPConfig(sizes=(12, 10, 4)))
    resumed_opt = make(resumed.parameters())
    resumed.load_state_dict(weights)
    resumed_opt.load_state_dict(saved)
    train(resumed, resumed_opt, batches, range(3, 6), backend=second)
    for (name, a), (_, b) in zip(resumed.named_parameters(), straight.named_parameters()):
        assert_same_bits(a.numpy(), b.numpy(), name)


@pytest.mark.parametrize("make", [lambda ps, lr: optim.Adam(ps, lr=lr, weight_decay=np.float64(1e-2)),
                                  lambda ps, lr: optim.AdamW(ps, lr=lr, betas=(np.float64(0.8), 0.9)),
                                  lambda ps, lr: optim.SGD(ps, lr=lr, momentum=np.float64(0.9), weight_decay=1e-2)],
                         ids=["adam", "adamw", "sgd"])
def test_numpy_scalar_hyperparameters_act_as_python_floats(make):
    """An lr from a NumPy computation (np.float64) is not allowed to lift the float32 arithmetic to float64 on
    one path only: both backends give the bits of the same run with Python floats."""
    results = []
    for backend, lr in [("numpy", 0.01), ("numpy", np.float64(0.01)), ("numba", np.float64(0.01))]:
        rng = np.random.default_rng(3)
        p = ember.tensor(rng.standard_normal(50).astype(np.float32), requires_grad=True)
        opt = make([p], lr)
        for _ in range(3):
            p.grad = ember.tensor(rng.standard_normal(50).astype(np.float32))
            with kernels.use(backend):
                opt.step()
        results.append(p.numpy())
    assert results[0].dtype == np.float32
    assert_same_bits(results[1], results[0], "NumPy lr, reference")
    assert_same_bits(results[2], results[0], "NumPy lr, kernel")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name, config", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                                          ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
                                          ("Adam", dict(lr=0.1, weight_decay=0.1)), ("AdamW", dict(lr=0.1))],
                         ids=["sgd_momentum_wd", "sgd_nesterov_wd", "adam_l2", "adamw"])
def test_a_zero_dimensional_parameter_matches_torch(torch, backend, name, config):
    """A scalar parameter (0-d): g + wd·p is then a NumPy scalar, not an array, and the momentum buffer must
    still be an array updated in place (the reference once kept a scalar there, and the momentum was lost)."""
    p = ember.tensor(np.float64(1.5), requires_grad=True)
    tp = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    ours, theirs = getattr(optim, name)([p], **config), getattr(torch.optim, name)([tp], **config)
    for g in (0.5, -2.0, 0.25, 1.0):
        p.grad, tp.grad = ember.tensor(np.float64(g)), torch.tensor(g, dtype=torch.float64)
        with kernels.use(backend):
            ours.step()
        theirs.step()
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-13)
    assert p.shape == ()


# ----------------------------------------------------------------------------- subnormal moments


def _subnormal(a: np.ndarray) -> int:
    return int(((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)).sum())


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=1e-3), lambda ps: optim.AdamW(ps, lr=1e-3),
                                  lambda ps: optim.SGD(ps, lr=1e-2, momentum=0.9)], ids=["adam", "adamw", "sgd"])
def test_a_parameter_whose_gradient_stays_zero_keeps_no_subnormal_state(make, dtype, backend):
    """A dead unit's moments decay by beta each step: they must reach +0, not crawl through subnormals (which the
    CPU computes 10-100x slower), and the parameter must end where exact arithmetic puts it."""
    steps = 7000 if dtype == np.float64 else 1200  # float64 needs more steps to get down there
    p = ember.tensor(np.array([0.5, -0.25, 1.0], dtype=dtype), requires_grad=True)
    opt = make([p])
    with kernels.use(backend):
        p.grad = ember.tensor(np.array([1e-3, -2e-3, 0.0], dtype=dtype))
        opt.step()
        after_first = p.numpy().copy()
        for _ in range(steps):
            p.grad = ember.tensor(np.zeros(3, dtype=dtype))
            opt.step()
    state = opt.state[id(p)]
    for name in ("M", "V", "momentum_buffer"):
        if name in state:
            assert _subnormal(state[name]) == 0, name
            assert not np.signbit(state[name]).any(), name
    first_moment = state.get("M", state.get("momentum_buffer"))
    assert (first_moment == 0).all()  # beta 0.9 per step: past the smallest normal, then +0
    # what the moments still move after the first step is far below a bit of these parameters
    moved = np.abs(p.numpy().astype(np.float64) - after_first)
    assert (moved <= 0.1 * 1e-3 * steps).all()  # it still moves (momentum), by a bounded amount...
    assert np.isfinite(p.numpy()).all()
