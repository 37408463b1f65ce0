"""Optimizers, gradient clipping and LR schedules: step-by-step parity with PyTorch, state round trips, errors."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import kernels, optim
from ember.models import MLP, MLPConfig

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 5


def initial_arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def gradient_sequence(steps: int = STEPS, seed: int = 1) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def ember_params(arrays) -> list[ember.Tensor]:
    return [ember.tensor(a.copy(), dtype=ember.float64, requires_grad=True) for a in arrays]


def torch_params(torch, arrays):
    return [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True) for a in arrays]


def assert_close(ours, theirs, rtol=1e-10, atol=1e-13, msg=""):
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64),
                               rtol=rtol, atol=atol, err_msg=msg)


def run_in_lockstep(torch, make_ours, make_theirs, steps: int = STEPS):
    """Apply the same gradients to both optimizers, comparing every parameter after every step."""
    arrays = initial_arrays()
    ps, tps = ember_params(arrays), torch_params(torch, arrays)
    ours, theirs = make_ours(ps), make_theirs(tps)
    for t, grads in enumerate(gradient_sequence(steps)):
        for p, tp, g in zip(ps, tps, grads):
            p.grad = ember.tensor(g.copy(), dtype=ember.float64)
            tp.grad = torch.tensor(g.copy())
        ours.step()
        theirs.step()
        for i, (p, tp) in enumerate(zip(ps, tps)):
            assert_close(p.numpy(), tp.detach().numpy(), msg=f"step {t + 1}, parameter {i}")
    # the parameters moved: a no-op optimizer would not pass the loop above against torch, but say so plainly
    assert not np.allclose(ps[0].numpy(), arrays[0])
    return ps, tps, ours, theirs


# ----------------------------------------------------------------------------- SGD


SGD_CONFIGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.8, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.05),
    "all": dict(lr=0.03, momentum=0.7, weight_decay=0.01, nesterov=True),
    "momentum_dampening_wd": dict(lr=0.03, momentum=0.5, dampening=0.5, weight_decay=0.2),
}


@pytest.mark.parametrize("config", SGD_CONFIGS.values(), ids=SGD_CONFIGS.keys())
def test_sgd_matches_torch(torch, config):
    _, _, ours, theirs = run_in_lockstep(torch, lambda ps: optim.SGD(ps, **config),
                                         lambda tps: torch.optim.SGD(tps, **config))
    if config.get("momentum"):
        ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
        for i in range(len(SHAPES)):
            assert_close(ours_sd["state"][i]["momentum_buffer"], theirs_sd["state"][i]["momentum_buffer"].numpy())


def sgd_reference(p0, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """SGD written out in NumPy, straight from the update rule."""
    p, buf = p0.copy(), None
    for t, g in enumerate(grads):
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if t == 0 else momentum * buf + (1.0 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


@pytest.mark.parametrize("config", SGD_CONFIGS.values(), ids=SGD_CONFIGS.keys())
def test_sgd_matches_numpy_formula(config):
    arrays = initial_arrays(3)
    grads = gradient_sequence(seed=4)
    ps = ember_params(arrays)
    opt = optim.SGD(ps, **config)
    for step_grads in grads:
        for p, g in zip(ps, step_grads):
            p.grad = ember.tensor(g, dtype=ember.float64)
        opt.step()
    for i, p in enumerate(ps):
        expected = sgd_reference(arrays[i], [g[i] for g in grads], **config)
        assert_close(p.numpy(), expected, rtol=1e-12, atol=1e-14, msg=f"parameter {i}")


def test_sgd_first_step_is_plain_gradient_step():
    """On the first step the momentum buffer is the gradient itself (no dampening), as in PyTorch."""
    p = ember.tensor([1.0, -2.0], dtype=ember.float64, requires_grad=True)
    opt = optim.SGD([p], lr=0.5, momentum=0.9, dampening=0.5)
    p.grad = ember.tensor([0.2, 0.4], dtype=ember.float64)
    opt.step()
    np.testing.assert_array_equal(p.numpy(), [0.9, -2.2])
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["momentum_buffer"], [0.2, 0.4])


def test_sgd_updates_in_place_and_keeps_dtype():
    p = ember.tensor(np.ones(4, np.float32), requires_grad=True)
    data = p.data
    p.grad = ember.tensor(np.full(4, 0.5, np.float32))
    optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1).step()
    assert p.data is data and p.dtype == np.float32
    np.testing.assert_allclose(p.numpy(), 1 - 0.1 * (0.5 + 0.1), rtol=1e-6)


# ----------------------------------------------------------------------------- Adam, AdamW


ADAM_CONFIGS = {
    "adam": ("Adam", dict(lr=0.01)),
    "adam_betas_eps": ("Adam", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6)),
    "adam_weight_decay": ("Adam", dict(lr=0.01, weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw_weight_decay": ("AdamW", dict(lr=0.02, weight_decay=0.3, betas=(0.85, 0.99))),
    "adamw_no_decay": ("AdamW", dict(lr=0.01, weight_decay=0.0)),
}


@pytest.mark.parametrize("name, config", ADAM_CONFIGS.values(), ids=ADAM_CONFIGS.keys())
def test_adam_matches_torch(torch, name, config):
    _, _, ours, theirs = run_in_lockstep(torch, lambda ps: getattr(optim, name)(ps, **config),
                                         lambda tps: getattr(torch.optim, name)(tps, **config))
    # the exported state is PyTorch's m and v (not the internally scaled moments)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert set(ours_sd["state"]) == set(theirs_sd["state"]) == set(range(len(SHAPES)))
    for i in range(len(SHAPES)):
        mine, ref = ours_sd["state"][i], theirs_sd["state"][i]
        assert int(mine["step"]) == int(ref["step"]) == STEPS
        assert_close(mine["exp_avg"], ref["exp_avg"].numpy(), msg=f"exp_avg of parameter {i}")
        assert_close(mine["exp_avg_sq"], ref["exp_avg_sq"].numpy(), msg=f"exp_avg_sq of parameter {i}")


def test_adamw_default_weight_decay_matches_torch(torch):
    """AdamW's default weight decay is PyTorch's (0.01), and it is decoupled from the gradient."""
    _, _, ours, theirs = run_in_lockstep(torch, lambda ps: optim.AdamW(ps, lr=0.05),
                                         lambda tps: torch.optim.AdamW(tps, lr=0.05))
    assert ours.param_groups[0]["weight_decay"] == theirs.param_groups[0]["weight_decay"] == 0.01


def test_adam_and_adamw_weight_decay_differ():
    arrays, grads = initial_arrays(), gradient_sequence(3)
    results = []
    for cls in (optim.Adam, optim.AdamW):
        ps = ember_params(arrays)
        opt = cls(ps, lr=0.1, weight_decay=0.5)
        for step_grads in grads:
            for p, g in zip(ps, step_grads):
                p.grad = ember.tensor(g, dtype=ember.float64)
            opt.step()
        results.append(ps[0].numpy())
    assert not np.allclose(results[0], results[1])


def test_adam_first_step_moves_by_lr():
    """After one step, m̂/sqrt(v̂) = sign(g): every element moves by lr (up to eps)."""
    p = ember.tensor([1.0, 2.0, -3.0], dtype=ember.float64, requires_grad=True)
    opt = optim.Adam([p], lr=0.01, eps=0.0)
    p.grad = ember.tensor([0.3, -7.0, 1e-3], dtype=ember.float64)
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.99, 2.01, -3.01], rtol=1e-14)


# ----------------------------------------------------------------------------- groups, skipping, zero_grad


@pytest.mark.parametrize("ours_name, config", [("SGD", dict(momentum=0.9)), ("Adam", {}), ("AdamW", {})])
def test_param_groups_with_different_lr_match_torch(torch, ours_name, config):
    arrays = initial_arrays()
    ps, tps = ember_params(arrays), torch_params(torch, arrays)
    ours = getattr(optim, ours_name)([{"params": ps[:2], "lr": 0.1}, {"params": ps[2:]}], lr=0.01, **config)
    theirs = getattr(torch.optim, ours_name)([{"params": tps[:2], "lr": 0.1}, {"params": tps[2:]}], lr=0.01, **config)
    assert [g["lr"] for g in ours.param_groups] == [0.1, 0.01]
    for grads in gradient_sequence():
        for p, tp, g in zip(ps, tps, grads):
            p.grad, tp.grad = ember.tensor(g, dtype=ember.float64), torch.tensor(g)
        ours.step()
        theirs.step()
    for p, tp in zip(ps, tps):
        assert_close(p.numpy(), tp.detach().numpy())


def test_param_group_lr_is_used():
    """The same gradient moves a parameter ten times further in a group with ten times the lr."""
    a = ember.tensor([0.0], dtype=ember.float64, requires_grad=True)
    b = ember.tensor([0.0], dtype=ember.float64, requires_grad=True)
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b]}], lr=0.1)
    a.grad = ember.tensor([1.0], dtype=ember.float64)
    b.grad = ember.tensor([1.0], dtype=ember.float64)
    opt.step()
    assert a.item() == pytest.approx(-1.0) and b.item() == pytest.approx(-0.1)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_params_without_grad_are_skipped(cls):
    kwargs = dict(lr=0.1, momentum=0.9) if cls is optim.SGD else dict(lr=0.1, weight_decay=0.1)
    a = ember.tensor([1.0, 2.0], dtype=ember.float64, requires_grad=True)
    b = ember.tensor([3.0, 4.0], dtype=ember.float64, requires_grad=True)
    opt = cls([a, b], **kwargs)
    a.grad = ember.tensor([0.5, 0.5], dtype=ember.float64)
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [3.0, 4.0])  # no grad: untouched, even with weight decay
    assert not np.array_equal(a.numpy(), [1.0, 2.0])
    assert set(opt.state_dict()["state"]) == {0}  # no state created for b
    b_before = b.numpy().copy()
    a.grad = None
    b.grad = ember.tensor([1.0, 1.0], dtype=ember.float64)
    a_before = a.numpy().copy()
    opt.step()
    np.testing.assert_array_equal(a.numpy(), a_before)  # a skipped, its momentum not applied
    assert not np.array_equal(b.numpy(), b_before)


def test_zero_grad_set_to_none():
    ps = ember_params(initial_arrays())
    opt = optim.SGD(ps, lr=0.1)
    for p in ps:
        p.grad = ember.tensor(np.ones(p.shape))
    opt.zero_grad()
    assert all(p.grad is None for p in ps)
    opt.zero_grad()  # again, with no grads: fine
    assert all(p.grad is None for p in ps)


def test_zero_grad_keeps_buffers_when_not_set_to_none():
    ps = ember_params(initial_arrays())
    opt = optim.SGD(ps, lr=0.1)
    grads = []
    for p in ps[:2]:
        p.grad = ember.tensor(np.ones(p.shape))
        grads.append(p.grad.data)
    opt.zero_grad(set_to_none=False)
    for p, g in zip(ps[:2], grads):
        assert p.grad is not None and p.grad.data is g  # the same array, zeroed in place
        np.testing.assert_array_equal(p.grad.numpy(), np.zeros(p.shape))
    assert ps[2].grad is None  # a missing grad stays missing


def test_zero_grad_after_backward_then_fresh_gradient():
    """zero_grad between backward calls: gradients do not accumulate across steps."""
    w = ember.tensor([2.0], dtype=ember.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.0)
    for set_to_none in (True, False):
        (w * w).sum().backward()
        opt.zero_grad(set_to_none=set_to_none)
        (w * 3.0).sum().backward()
        assert w.grad.item() == pytest.approx(3.0)
        opt.zero_grad()


# ----------------------------------------------------------------------------- state_dict / resume


def tiny_problem(seed: int = 0, n_batches: int = 6):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n_batches, 16, 12)).astype(np.float32)
    ys = rng.integers(0, 4, (n_batches, 16))
    return xs, ys


def make_model_and_optimizer(cls, kwargs, two_groups=False):
    ember.manual_seed(123)
    model = MLP(MLPConfig(sizes=(12, 10, 4)))
    params = list(model.parameters())
    if two_groups:
        params = [{"params": params[:2], "lr": kwargs["lr"] * 2}, {"params": params[2:]}]
    return model, cls(params, **kwargs)


def train_steps(model, opt, xs, ys, steps):
    for i in steps:
        opt.zero_grad()
        F.cross_entropy(model(ember.tensor(xs[i])), ember.tensor(ys[i])).backward()
        opt.step()


RESUME_CONFIGS = {
    "sgd_nesterov_wd": (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "sgd_dampening": (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.2)),
    "adam": (optim.Adam, dict(lr=1e-2, weight_decay=1e-3)),
    "adamw": (optim.AdamW, dict(lr=1e-2, weight_decay=0.1, betas=(0.8, 0.95))),
}


@pytest.fixture(params=kernels.available())
def kernel_backend(request):
    """Each backend the installation has (the fused numba kernels and the NumPy reference), one at a time."""
    with kernels.use(request.param):
        yield request.param


@pytest.mark.parametrize("two_groups", [False, True], ids=["one_group", "two_groups"])
@pytest.mark.parametrize("cls, kwargs", RESUME_CONFIGS.values(), ids=RESUME_CONFIGS.keys())
def test_resume_is_bit_exact(cls, kwargs, two_groups, kernel_backend):
    xs, ys = tiny_problem()
    straight, straight_opt = make_model_and_optimizer(cls, kwargs, two_groups)
    train_steps(straight, straight_opt, xs, ys, range(6))

    first, first_opt = make_model_and_optimizer(cls, kwargs, two_groups)
    train_steps(first, first_opt, xs, ys, range(3))
    weights = {k: v.numpy().copy() for k, v in first.state_dict().items()}
    opt_state = copy.deepcopy(first_opt.state_dict())
    del first, first_opt

    ember.manual_seed(999)  # a fresh model with different initial weights
    resumed = MLP(MLPConfig(sizes=(12, 10, 4)))
    params = list(resumed.parameters())
    if two_groups:
        params = [{"params": params[:2], "lr": 0.5}, {"params": params[2:]}]
    resumed_opt = cls(params, **{**kwargs, "lr": 0.5})  # the saved lr must win
    resumed.load_state_dict(weights)
    resumed_opt.load_state_dict(opt_state)
    assert [g["lr"] for g in resumed_opt.param_groups] == [g["lr"] for g in straight_opt.param_groups]
    train_steps(resumed, resumed_opt, xs, ys, range(3, 6))

    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_state_dict_is_a_snapshot():
    """Stepping after state_dict() does not change the saved arrays."""
    ps = ember_params(initial_arrays())
    opt = optim.Adam(ps, lr=0.1)
    for grads in gradient_sequence(2):
        for p, g in zip(ps, grads):
            p.grad = ember.tensor(g, dtype=ember.float64)
        opt.step()
    sd = opt.state_dict()
    saved = {k: v.copy() for k, v in sd["state"][0].items() if hasattr(v, "shape")}
    opt.step()
    for k, v in saved.items():
        np.testing.assert_array_equal(sd["state"][0][k], v, err_msg=k)
    assert sd["state"][0]["step"] == 2


def test_adam_loads_a_torch_state_dict(torch):
    """PyTorch's saved m, v and step continue in ember exactly as they do in PyTorch."""
    arrays = initial_arrays()
    grads = gradient_sequence(6)
    tps = torch_params(torch, arrays)
    theirs = torch.optim.Adam(tps, lr=0.01, weight_decay=0.01)
    for step_grads in grads[:3]:
        for tp, g in zip(tps, step_grads):
            tp.grad = torch.tensor(g)
        theirs.step()
    tsd = theirs.state_dict()
    converted = {
        "state": {i: {k: (v.numpy().copy() if v.ndim else float(v)) for k, v in st.items()}
                  for i, st in tsd["state"].items()},
        "param_groups": [{k: v for k, v in g.items()} for g in tsd["param_groups"]],
    }
    ps = ember_params([tp.detach().numpy() for tp in tps])
    ours = optim.Adam(ps, lr=0.5)
    ours.load_state_dict(converted)
    for step_grads in grads[3:]:
        for p, tp, g in zip(ps, tps, step_grads):
            p.grad, tp.grad = ember.tensor(g, dtype=ember.float64), torch.tensor(g)
        ours.step()
        theirs.step()
    for p, tp in zip(ps, tps):
        assert_close(p.numpy(), tp.detach().numpy())


def optimizer_snapshot(opt):
    return copy.deepcopy(opt.state_dict())


def assert_same_snapshot(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert set(a["state"]) == set(b["state"])
    for i in a["state"]:
        assert set(a["state"][i]) == set(b["state"][i])
        for k, v in a["state"][i].items():
            np.testing.assert_array_equal(v, b["state"][i][k])


def trained_adam():
    ps = ember_params(initial_arrays())
    opt = optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.2}], lr=0.1)
    for p, g in zip(ps, gradient_sequence(1)[0]):
        p.grad = ember.tensor(g, dtype=ember.float64)
    opt.step()
    return ps, opt


def corrupt_groups(sd):
    sd["param_groups"] = sd["param_groups"][:1]


def corrupt_group_size(sd):
    sd["param_groups"][1]["params"] = sd["param_groups"][1]["params"][:1]


def corrupt_state_shape(sd):
    sd["state"][1]["exp_avg"] = np.zeros((4,))


def corrupt_state_index(sd):
    sd["state"][7] = sd["state"][0]


@pytest.mark.parametrize("corrupt, message", [
    (corrupt_groups, "parameter groups"),
    (corrupt_group_size, "parameters saved"),
    (corrupt_state_shape, "shape"),
    (corrupt_state_index, "state for parameter 7"),
], ids=["wrong_group_count", "wrong_param_count", "wrong_state_shape", "state_for_missing_param"])
def test_load_state_dict_rejects_mismatch_and_changes_nothing(corrupt, message):
    source_ps, source = trained_adam()
    bad = copy.deepcopy(source.state_dict())
    for g in bad["param_groups"]:
        g["lr"] = 123.0  # would show if hyperparameters were half-applied
    corrupt(bad)

    target_ps, target = trained_adam()
    for p, g in zip(target_ps, gradient_sequence(1, seed=9)[0]):
        p.grad = ember.tensor(g, dtype=ember.float64)
    target.step()  # a different state from the source's
    before = optimizer_snapshot(target)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(bad)
    assert_same_snapshot(optimizer_snapshot(target), before)
    # and it still steps as before the failed load
    target.step()
    assert optimizer_snapshot(target)["state"][0]["step"] == 3


def test_sgd_load_state_dict_rejects_misshaped_momentum():
    ps = ember_params(initial_arrays())
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    for p, g in zip(ps, gradient_sequence(1)[0]):
        p.grad = ember.tensor(g, dtype=ember.float64)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    sd["state"][0]["momentum_buffer"] = np.zeros((4, 3))
    before = optimizer_snapshot(opt)
    with pytest.raises(ValueError, match=r"momentum_buffer.*\(4, 3\)"):
        opt.load_state_dict(sd)
    assert_same_snapshot(optimizer_snapshot(opt), before)


# ----------------------------------------------------------------------------- hyperparameter errors


def some_params():
    return [ember.tensor([1.0, 2.0], requires_grad=True)]


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD(some_params(), lr=-0.1), "learning rate must be >= 0, got -0.1"),
    (lambda: optim.Adam(some_params(), lr=-1e-3), "learning rate must be >= 0"),
    (lambda: optim.AdamW(some_params(), lr=-1.0), "learning rate must be >= 0"),
    (lambda: optim.SGD(some_params(), momentum=-0.5), "momentum must be >= 0"),
    (lambda: optim.SGD(some_params(), weight_decay=-1.0), "weight_decay must be >= 0"),
    (lambda: optim.Adam(some_params(), betas=(1.0, 0.999)), "betas must be in \\[0, 1\\)"),
    (lambda: optim.Adam(some_params(), betas=(0.9, -0.1)), "betas must be in \\[0, 1\\)"),
    (lambda: optim.AdamW(some_params(), betas=(-0.1, 0.9)), "AdamW: betas"),
    (lambda: optim.Adam(some_params(), eps=-1e-8), "eps must be >= 0"),
    (lambda: optim.SGD(some_params(), nesterov=True), "Nesterov momentum needs momentum > 0"),
    (lambda: optim.SGD(some_params(), momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
    (lambda: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda: optim.Adam(iter([])), "empty parameter list"),
    (lambda: optim.SGD([ember.tensor([1.0, 2.0])]), "does not require grad"),
    (lambda: optim.SGD([{"params": some_params(), "lr": -2.0}], lr=0.1), "got -2.0"),
], ids=["sgd_lr", "adam_lr", "adamw_lr", "momentum", "weight_decay", "beta1_one", "beta2_negative",
        "adamw_beta1", "eps", "nesterov_no_momentum", "nesterov_dampening", "empty", "empty_iterator",
        "no_requires_grad", "group_lr"])
def test_bad_hyperparameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_same_parameter_twice_raises():
    p = ember.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="appears in two groups"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_non_tensor_parameter_raises():
    with pytest.raises(TypeError, match="must be Tensors, got ndarray"):
        optim.SGD([np.zeros(3)], lr=0.1)


def test_model_parameters_generator_accepted():
    model = MLP(MLPConfig(sizes=(4, 3)))
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert sum(len(g["params"]) for g in opt.param_groups) == 2


# ----------------------------------------------------------------------------- clip_grad_norm_


def p_norm(flat: np.ndarray, norm_type: float) -> float:
    return float(np.abs(flat).max() if norm_type == math.inf else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type))


def grads_for_clipping(scale: float):
    rng = np.random.default_rng(5)
    return [scale * rng.standard_normal(s) for s in SHAPES]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0], ids=["l2", "l1", "inf", "l3"])
@pytest.mark.parametrize("scale", [10.0, 0.01], ids=["clipped", "under_max"])
def test_clip_grad_norm_matches_torch(torch, norm_type, scale):
    grads = grads_for_clipping(scale)
    ps, tps = ember_params(initial_arrays()), torch_params(torch, initial_arrays())
    for p, tp, g in zip(ps, tps, grads):
        p.grad, tp.grad = ember.tensor(g.copy(), dtype=ember.float64), torch.tensor(g.copy())
    max_norm = 1.5
    total = optim.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    ref = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(float(ref), rel=1e-12)
    for p, tp in zip(ps, tps):
        assert_close(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)
    flat = np.concatenate([g.ravel() for g in grads])
    expected_norm = p_norm(flat, norm_type)
    assert total == pytest.approx(expected_norm, rel=1e-12)
    new_flat = np.concatenate([p.grad.numpy().ravel() for p in ps])
    new_norm = p_norm(new_flat, norm_type)
    if expected_norm > max_norm:
        assert new_norm == pytest.approx(max_norm, rel=1e-5)
    else:
        np.testing.assert_array_equal(new_flat, flat)  # untouched, not even multiplied by 1.0


def test_clip_grad_norm_ignores_params_without_grad(torch):
    arrays = initial_arrays()
    ps, tps = ember_params(arrays), torch_params(torch, arrays)
    grads = grads_for_clipping(5.0)
    for p, tp, g in list(zip(ps, tps, grads))[:2]:
        p.grad, tp.grad = ember.tensor(g.copy(), dtype=ember.float64), torch.tensor(g.copy())
    total = optim.clip_grad_norm_(ps, 1.0)
    ref = torch.nn.utils.clip_grad_norm_(tps, 1.0)
    assert total == pytest.approx(float(ref), rel=1e-12)
    assert total == pytest.approx(math.sqrt(sum(float((g**2).sum()) for g in grads[:2])), rel=1e-12)
    assert ps[2].grad is None
    for p, tp in zip(ps[:2], tps[:2]):
        assert_close(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_edge_cases():
    ps = ember_params(initial_arrays())
    assert optim.clip_grad_norm_(ps, 1.0) == 0.0  # no grads at all
    single = ps[0]
    single.grad = ember.tensor(np.full(single.shape, 2.0))  # norm sqrt(12 * 4)
    total = optim.clip_grad_norm_(single, 1.0)  # a single tensor, not a list
    assert total == pytest.approx(math.sqrt(48.0))
    assert np.linalg.norm(single.grad.numpy()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="norm_type must be >= 1"):
        optim.clip_grad_norm_(ps, 1.0, norm_type=0.5)
    single.grad = ember.tensor(np.array([np.inf] * 12).reshape(single.shape))
    with pytest.raises(RuntimeError, match="total gradient norm is inf"):
        optim.clip_grad_norm_(single, 1.0, error_if_nonfinite=True)


# ----------------------------------------------------------------------------- LR schedulers


def sgd_pair(torch, lrs=(0.1, 0.03)):
    ps, tps = ember_params(initial_arrays()), torch_params(torch, initial_arrays())
    ours = optim.SGD([{"params": ps[:1], "lr": lrs[0]}, {"params": ps[1:], "lr": lrs[1]}], lr=lrs[0])
    theirs = torch.optim.SGD([{"params": tps[:1], "lr": lrs[0]}, {"params": tps[1:], "lr": lrs[1]}], lr=lrs[0])
    return ours, theirs


def lr_sequences(ours, theirs, sched, tsched, steps: int):
    mine, ref = [ours_lrs(ours)], [[g["lr"] for g in theirs.param_groups]]
    for _ in range(steps):
        theirs.step()  # PyTorch warns when the scheduler steps before the optimizer
        sched.step()
        tsched.step()
        mine.append(ours_lrs(ours))
        ref.append([g["lr"] for g in theirs.param_groups])
    return np.array(mine), np.array(ref)


def ours_lrs(opt):
    return [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("step_size, gamma", [(7, 0.5), (1, 0.9), (10, 0.1)])
def test_step_lr_matches_torch(torch, step_size, gamma):
    ours, theirs = sgd_pair(torch)
    mine, ref = lr_sequences(ours, theirs, optim.StepLR(ours, step_size, gamma),
                             torch.optim.lr_scheduler.StepLR(theirs, step_size, gamma), 30)
    np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=0)
    assert mine[-1, 0] == pytest.approx(0.1 * gamma ** (30 // step_size))


@pytest.mark.parametrize("t_max, eta_min", [(30, 0.0), (30, 1e-3), (12, 0.0), (12, 5e-3)])
def test_cosine_annealing_matches_torch(torch, t_max, eta_min):
    """Equal to PyTorch over one period; afterwards ember holds eta_min (PyTorch's schedule rises again)."""
    ours, theirs = sgd_pair(torch)
    mine, ref = lr_sequences(ours, theirs, optim.CosineAnnealingLR(ours, T_max=t_max, eta_min=eta_min),
                             torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=t_max, eta_min=eta_min), 30)
    period = slice(0, t_max + 1)
    np.testing.assert_allclose(mine[period], ref[period], rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(mine[0], [0.1, 0.03])
    np.testing.assert_allclose(mine[t_max:], eta_min, rtol=1e-12, atol=1e-15)


def nanogpt_lr(it: int, learning_rate: float, warmup_iters: int, lr_decay_iters: int, min_lr: float) -> float:
    """nanoGPT's get_lr, copied from train.py."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


@pytest.mark.parametrize("warmup, decay, min_lr", [(5, 25, 1e-4), (0, 20, 0.0), (10, 30, 6e-5), (3, 4, 1e-3)])
def test_warmup_cosine_matches_nanogpt(warmup, decay, min_lr):
    p = some_params()
    opt = optim.AdamW(p, lr=6e-4)
    sched = optim.WarmupCosineLR(opt, warmup_steps=warmup, decay_steps=decay, min_lr=min_lr)
    got = [sched.get_last_lr()[0]]
    for _ in range(40):
        sched.step()
        got.append(opt.param_groups[0]["lr"])
    expected = [nanogpt_lr(it, 6e-4, warmup, decay, min_lr) for it in range(41)]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-18)
    assert got[0] > 0  # never zero at step 0
    assert got[-1] == min_lr


def test_scheduler_state_dict_round_trip(torch):
    ours, _ = sgd_pair(torch)
    sched = optim.WarmupCosineLR(ours, warmup_steps=4, decay_steps=20, min_lr=1e-4)
    for _ in range(7):
        sched.step()
    state = copy.deepcopy(sched.state_dict())
    opt_state = copy.deepcopy(ours.state_dict())
    expected = [ours_lrs(ours)]
    for _ in range(5):
        sched.step()
        expected.append(ours_lrs(ours))

    fresh, _ = sgd_pair(torch, lrs=(0.7, 0.7))  # different lrs, overwritten by the load
    fresh.load_state_dict(opt_state)
    fresh_sched = optim.WarmupCosineLR(fresh, warmup_steps=4, decay_steps=20, min_lr=1e-4)
    fresh_sched.load_state_dict(state)
    got = [ours_lrs(fresh)]
    for _ in range(5):
        fresh_sched.step()
        got.append(ours_lrs(fresh))
    assert got == expected
    assert fresh_sched.last_step == sched.last_step == 12
    assert fresh_sched.base_lrs == [0.1, 0.03]


def test_scheduler_state_dict_restores_base_lrs():
    opt = optim.SGD(some_params(), lr=0.2)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(5):
        sched.step()
    state = sched.state_dict()
    other_opt = optim.SGD(some_params(), lr=1.0)
    other = optim.StepLR(other_opt, step_size=2, gamma=0.5)
    assert other.get_last_lr() == [1.0]
    other.load_state_dict(state)
    assert other.get_last_lr() == [0.2 * 0.5**2]


def test_scheduler_errors():
    opt = optim.SGD(some_params(), lr=0.1)
    with pytest.raises(ValueError, match="step_size must be positive"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max must be positive"):
        optim.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="warmup_steps <= decay_steps"):
        optim.WarmupCosineLR(opt, warmup_steps=10, decay_steps=5)
    with pytest.raises(TypeError, match="expected an Optimizer"):
        optim.StepLR(object(), step_size=1)


def test_scheduler_drives_the_optimizer_step():
    """The lr the scheduler sets is the lr the next step uses."""
    p = ember.tensor([0.0], dtype=ember.float64, requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    positions = []
    for _ in range(3):
        p.grad = ember.tensor([1.0], dtype=ember.float64)
        opt.step()
        sched.step()
        positions.append(p.item())
    np.testing.assert_allclose(positions, [-1.0, -1.5, -1.75])
