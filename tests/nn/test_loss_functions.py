"""Losses against PyTorch on what the op table cannot cover: 0-d inputs, empty batches, every target
ignored, clamps and far tails, PyTorch's cosine-similarity gradient at clamped norms, loss modules'
buffers, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F


def _ours_and_theirs(torch, *arrays, grad=True):
    ours = [ember.tensor(a, requires_grad=grad) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad) for a in arrays]
    return ours, theirs


def _assert_same(out, ref, ours, theirs, rtol=1e-12, atol=1e-15):
    """Equal values (NaN where PyTorch has NaN) and equal gradients for a random cotangent."""
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True)
    cot = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(cot)
    ref.backward(ref.new_tensor(cot))
    for a, b in zip(ours, theirs):
        if b.grad is None:
            assert a.grad is None or not np.any(a.grad.numpy())
        else:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol, equal_nan=True)


# name -> (ember call, torch call) on (prediction, target) float64 tensors of one shape
PAIRWISE = {
    "mse_loss": (F.mse_loss, "mse_loss", {}),
    "l1_loss": (F.l1_loss, "l1_loss", {}),
    "smooth_l1_loss": (F.smooth_l1_loss, "smooth_l1_loss", {"beta": 0.5}),
    "huber_loss": (F.huber_loss, "huber_loss", {"delta": 0.5}),
    "binary_cross_entropy": (F.binary_cross_entropy, "binary_cross_entropy", {}),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits", {}),
    "kl_div": (F.kl_div, "kl_div", {}),
}


@pytest.mark.parametrize("name", sorted(PAIRWISE))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_d_inputs(name, reduction, torch):
    fn, torch_name, kwargs = PAIRWISE[name]
    ours, theirs = _ours_and_theirs(torch, np.array(0.3), np.array(0.8))
    out = fn(*ours, reduction=reduction, **kwargs)
    ref = getattr(torch.nn.functional, torch_name)(*theirs, reduction=reduction, **kwargs)
    assert out.shape == tuple(ref.shape) == ()
    _assert_same(out, ref, ours, theirs)


@pytest.mark.parametrize("name", sorted(PAIRWISE))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_inputs(name, reduction, torch):
    """'mean' over nothing is NaN (PyTorch's 0/0), 'sum' is 0, 'none' is empty."""
    fn, torch_name, kwargs = PAIRWISE[name]
    ours, theirs = _ours_and_theirs(torch, np.zeros((0, 3)), np.zeros((0, 3)))
    out = fn(*ours, reduction=reduction, **kwargs)
    ref = getattr(torch.nn.functional, torch_name)(*theirs, reduction=reduction, **kwargs)
    assert out.shape == tuple(ref.shape)
    _assert_same(out, ref, ours, theirs)


def test_kl_div_batchmean_on_0d_and_empty(torch):
    for shape in [(), (0, 3)]:
        ours, theirs = _ours_and_theirs(torch, np.full(shape, -0.3), np.full(shape, 0.4))
        out = F.kl_div(*ours, reduction="batchmean")
        ref = torch.nn.functional.kl_div(*theirs, reduction="batchmean")
        _assert_same(out, ref, ours, theirs)


def test_class_losses_on_one_sample(torch):
    """Input (C,) with a 0-d target, for cross_entropy (also with weights and smoothing) and nll_loss."""
    ours, theirs = _ours_and_theirs(torch, np.array([0.2, -1.0, 0.5, 2.0]))
    w = np.array([1.0, 2.0, 0.5, 0.3])
    for reduction in ("mean", "sum", "none"):
        for kwargs in ({}, {"label_smoothing": 0.2}):
            out = F.cross_entropy(ours[0], np.array(2), ember.tensor(w), reduction=reduction, **kwargs)
            ref = torch.nn.functional.cross_entropy(theirs[0], torch.tensor(2), torch.from_numpy(w),
                                                    reduction=reduction, **kwargs)
            assert out.shape == tuple(ref.shape) == ()
            _assert_same(out, ref, ours, theirs)
            ours[0].grad = theirs[0].grad = None
        out = F.nll_loss(ours[0], np.array(1), reduction=reduction)
        ref = torch.nn.functional.nll_loss(theirs[0], torch.tensor(1), reduction=reduction)
        _assert_same(out, ref, ours, theirs)
        ours[0].grad = theirs[0].grad = None


CLASS_CASES = {
    "plain": {},
    "smoothing": {"label_smoothing": 0.3},
    "weight": {"weight": np.array([0.5, 2.0, 1.0, 3.0])},
    "weight_smoothing": {"weight": np.array([0.5, 2.0, 1.0, 3.0]), "label_smoothing": 0.3},
}


def _class_kwargs(kwargs, frame, torch=None):
    out = dict(kwargs)
    if "weight" in out:
        out["weight"] = torch.from_numpy(out["weight"]) if frame == "torch" else ember.tensor(out["weight"])
    return out


@pytest.mark.parametrize("case", sorted(CLASS_CASES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_every_target_ignored_and_on_an_empty_batch(case, reduction, torch):
    """PyTorch: 'mean' is NaN (nothing counted) with a zero gradient; 'sum' 0; 'none' zeros."""
    kwargs = CLASS_CASES[case]
    for logits, target in [(np.random.default_rng(1).standard_normal((3, 4)), np.full(3, -100)),
                           (np.zeros((0, 4)), np.zeros(0, dtype=np.int64))]:
        ours, theirs = _ours_and_theirs(torch, logits)
        out = F.cross_entropy(ours[0], target, reduction=reduction, **_class_kwargs(kwargs, "ember"))
        ref = torch.nn.functional.cross_entropy(theirs[0], torch.from_numpy(target), reduction=reduction,
                                                **_class_kwargs(kwargs, "torch", torch))
        _assert_same(out, ref, ours, theirs)
        if "smoothing" not in case:
            nll = F.nll_loss(ours[0].detach(), target, reduction=reduction,
                             weight=_class_kwargs(kwargs, "ember").get("weight"))
            ref_nll = torch.nn.functional.nll_loss(theirs[0].detach(), torch.from_numpy(target), reduction=reduction,
                                                   weight=_class_kwargs(kwargs, "torch", torch).get("weight"))
            np.testing.assert_allclose(nll.numpy(), ref_nll.numpy(), equal_nan=True)


def test_probability_targets_on_an_empty_batch(torch):
    ours, theirs = _ours_and_theirs(torch, np.zeros((0, 4)), np.zeros((0, 4)))
    for kwargs in ({}, {"label_smoothing": 0.1}):
        out = F.cross_entropy(*ours, **kwargs)
        ref = torch.nn.functional.cross_entropy(*theirs, **kwargs)
        assert np.isnan(out.item()) and np.isnan(ref.item())


def test_masks_that_select_nothing_still_give_zero():
    """ember's mask extension: a mask with no entries means no loss (0), not PyTorch's 0/0."""
    x = ember.tensor(np.ones((3, 4)), requires_grad=True)
    assert F.masked_cross_entropy(x, np.array([0, 1, 2]), np.zeros(3, dtype=bool)).item() == 0.0
    assert F.masked_mse_loss(x, ember.zeros(3, 4, dtype=ember.float64), np.zeros((3, 4))).item() == 0.0


def test_cross_entropy_class_weights_mean_divides_by_the_counted_weights():
    x = np.random.default_rng(2).standard_normal((4, 3))
    t = np.array([0, 2, -100, 2])
    w = np.array([0.5, 1.0, 3.0])
    loss = F.cross_entropy(ember.tensor(x), t, ember.tensor(w)).item()
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    kept = [0, 1, 3]
    expected = -sum(w[t[i]] * logp[i, t[i]] for i in kept) / sum(w[t[i]] for i in kept)
    assert loss == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- binary cross-entropy


def test_bce_clamps_logs_at_minus_100_and_floors_the_gradient_like_torch(torch):
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 1 - 1e-17, 0.5])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.6, 0.5])
    ours, theirs = _ours_and_theirs(torch, p, y)
    out = F.binary_cross_entropy(*ours, reduction="none")
    ref = torch.nn.functional.binary_cross_entropy(*theirs, reduction="none")
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12)
    assert out.numpy()[0] == 100.0 and out.numpy()[1] == 100.0
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours[0].grad.numpy(), theirs[0].grad.numpy(), rtol=1e-12)  # ±1e12 at 0 and 1
    finite = np.isfinite(theirs[1].grad.numpy())  # d/dy = log(1-p) - log(p) is infinite at p = 0, 1
    np.testing.assert_array_equal(np.isfinite(ours[1].grad.numpy()), finite)
    np.testing.assert_allclose(ours[1].grad.numpy()[finite], theirs[1].grad.numpy()[finite], rtol=1e-12)


@pytest.mark.parametrize("bad, which", [([1.5], "input"), ([-0.1], "input"), ([float("nan")], "input"),
                                        ([0.5], "target")])
def test_bce_refuses_values_outside_0_1_as_torch(bad, which, torch):
    p, y = (bad, [1.0]) if which == "input" else ([0.5], [1.5])
    with pytest.raises(ValueError, match=f"{which} must be between 0 and 1"):
        F.binary_cross_entropy(ember.tensor(p), ember.tensor(y))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y))


def test_bce_with_logits_extreme_logits_with_weights(torch):
    x = np.array([[-1e4, -30.0, 0.0], [30.0, 1e4, 2.0]])
    y = np.array([[1.0, 0.0, 0.5], [1.0, 0.0, 0.25]])
    w, pw = np.array([0.5, 1.0, 2.0]), np.array([[3.0], [0.5]])
    ours, theirs = _ours_and_theirs(torch, x, y)
    for reduction in ("mean", "sum", "none"):
        out = F.binary_cross_entropy_with_logits(*ours, ember.tensor(w), pos_weight=ember.tensor(pw),
                                                 reduction=reduction)
        ref = torch.nn.functional.binary_cross_entropy_with_logits(
            *theirs, torch.from_numpy(w), pos_weight=torch.from_numpy(pw), reduction=reduction)
        _assert_same(out, ref, ours, theirs)
        for t in ours + theirs:
            t.grad = None


def test_bce_with_logits_pos_weight_number_equals_tensor():
    x = ember.tensor(np.random.default_rng(3).standard_normal((4, 3)))
    y = ember.tensor(np.random.default_rng(4).uniform(size=(4, 3)))
    a = F.binary_cross_entropy_with_logits(x, y, pos_weight=2.5).item()
    b = F.binary_cross_entropy_with_logits(x, y, pos_weight=ember.tensor([2.5, 2.5, 2.5], dtype=x.dtype)).item()
    assert a == pytest.approx(b, rel=1e-14)


# ----------------------------------------------------------------------------- kl_div


def test_kl_div_zero_and_negative_targets_like_torch(torch):
    """target·log(target) is 0 at target = 0 and NaN below; PyTorch's target gradient is NaN at 0."""
    ours, theirs = _ours_and_theirs(torch, np.array([-0.5, -1.0, -2.0]), np.array([0.0, 0.5, -0.1]))
    out = F.kl_div(*ours, reduction="none")
    ref = torch.nn.functional.kl_div(*theirs, reduction="none")
    _assert_same(out, ref, ours, theirs)
    assert out.numpy()[0] == 0.0 and np.isnan(out.numpy()[2])


# ----------------------------------------------------------------------------- cosine similarity


def test_cosine_similarity_gradient_at_clamped_norms_is_torchs(torch):
    """Where a norm is below eps PyTorch clamps it outside autograd: the gradient keeps the norm's path."""
    a = np.array([[1e-10, 0.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = np.array([[2e-10, 1e-9, 1.0], [0.0, 0.0, 0.0], [1e-9, -2e-9, 0.0]])
    for dim in (0, 1):
        ours, theirs = _ours_and_theirs(torch, a, b)
        out = F.cosine_similarity(*ours, dim=dim, eps=1e-8)
        ref = torch.nn.functional.cosine_similarity(*theirs, dim=dim, eps=1e-8)
        _assert_same(out, ref, ours, theirs, rtol=1e-10, atol=1e-12)


def test_cosine_similarity_broadcasts_and_defaults_like_torch(torch):
    rng = np.random.default_rng(5)
    cases = [((4, 3), (3,), {"dim": -1}), ((4, 1, 3), (5, 3), {"dim": -1}), ((4, 3), (3,), {"dim": 0}),
             ((2, 3, 4), (2, 3, 4), {}), ((3,), (3,), {"dim": 0}), ((2, 0), (2, 0), {}), ((0, 3), (0, 3), {})]
    for s1, s2, kwargs in cases:
        ours, theirs = _ours_and_theirs(torch, rng.standard_normal(s1), rng.standard_normal(s2))
        out = F.cosine_similarity(*ours, **kwargs)
        ref = torch.nn.functional.cosine_similarity(*theirs, **kwargs)
        assert out.shape == tuple(ref.shape)
        _assert_same(out, ref, ours, theirs, rtol=1e-10, atol=1e-12)
    m = nn.CosineSimilarity(dim=0, eps=1e-6)
    assert m.dim == 0 and m.eps == 1e-6


def test_cosine_similarity_errors(torch):
    a = ember.zeros(4, 3)
    with pytest.raises(IndexError, match="out of range"):
        F.cosine_similarity(ember.zeros(3), ember.zeros(3))  # default dim=1 on vectors, as PyTorch refuses
    with pytest.raises(IndexError):
        torch.nn.functional.cosine_similarity(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="broadcast"):
        F.cosine_similarity(a, ember.zeros(4, 2))
    with pytest.raises(ValueError, match="eps"):
        F.cosine_similarity(a, a, eps=-1.0)
    with pytest.raises(TypeError, match="floating"):
        F.cosine_similarity(ember.tensor([[1, 2]]), ember.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="dtype mismatch"):
        F.cosine_similarity(a, ember.zeros(4, 3, dtype=ember.float64))


# ----------------------------------------------------------------------------- weights


def test_mse_and_l1_weight_that_requires_grad_gets_torchs_gradient(torch):
    rng = np.random.default_rng(6)
    x, y, w = rng.standard_normal((3, 2)), rng.standard_normal((3, 2)), rng.uniform(0.5, 2, (3, 2))
    for name in ("mse_loss", "l1_loss", "huber_loss"):
        for reduction in ("mean", "sum", "none"):
            ours, theirs = _ours_and_theirs(torch, x, y, w)
            out = getattr(F, name)(ours[0], ours[1], reduction=reduction, weight=ours[2])
            ref = getattr(torch.nn.functional, name)(theirs[0], theirs[1], reduction=reduction, weight=theirs[2])
            _assert_same(out, ref, ours, theirs)


def test_loss_weights_are_constants_as_in_torch(torch):
    x = ember.tensor(np.zeros((2, 3)), requires_grad=True)
    w = ember.ones(3, dtype=ember.float64, requires_grad=True)
    with pytest.raises(ValueError, match="cannot require grad"):
        F.cross_entropy(x, np.array([0, 1]), w)
    with pytest.raises(RuntimeError, match="not differentiable"):
        torch.nn.functional.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), torch.ones(3, requires_grad=True))
    with pytest.raises(ValueError, match="cannot require grad"):
        F.binary_cross_entropy_with_logits(x, ember.zeros(2, 3, dtype=ember.float64), pos_weight=w)
    with ember.no_grad():
        F.cross_entropy(x, np.array([0, 1]), w)  # fine without a graph


# ----------------------------------------------------------------------------- argument errors


def test_argument_errors(torch):
    x = ember.tensor(np.zeros((4, 5)), requires_grad=True)
    t = np.array([0, 1, 2, 3])
    p = ember.tensor(np.full((4, 5), 0.5))
    for fn, args in [(F.cross_entropy, (x, t)), (F.nll_loss, (x, t)), (F.mse_loss, (x, p)), (F.l1_loss, (x, p)),
                     (F.smooth_l1_loss, (x, p)), (F.huber_loss, (x, p)), (F.binary_cross_entropy, (p, p)),
                     (F.binary_cross_entropy_with_logits, (x, p))]:
        with pytest.raises(ValueError, match="reduction"):
            fn(*args, reduction="avg")
        with pytest.raises(ValueError, match="reduction"):
            fn(*args, reduction="batchmean")
    with pytest.raises(ValueError, match="reduction"):
        F.kl_div(x, p, reduction="avg")
    with pytest.raises(ValueError, match="one value per class"):
        F.cross_entropy(x, t, ember.ones(4, dtype=ember.float64))
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(torch.zeros(4, 5), torch.from_numpy(t), torch.ones(4))
    with pytest.raises(ValueError, match="one value per class"):
        F.nll_loss(x, t, ember.ones(1, 5, dtype=ember.float64))
    with pytest.raises(TypeError, match="float32 but the input is float64"):
        F.cross_entropy(x, t, ember.ones(5))
    with pytest.raises(IndexError, match="out of range"):
        F.nll_loss(x, np.array([0, 1, 2, 7]))
    with pytest.raises(IndexError, match="out of range"):
        F.nll_loss(x, np.array([0, 1, 2, -1]))
    with pytest.raises(ValueError, match="targets of shape"):
        F.nll_loss(x, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integers"):
        F.nll_loss(x, np.zeros(4))
    with pytest.raises(ValueError, match="0-d"):
        F.cross_entropy(ember.tensor(1.0), np.array(0))
    with pytest.raises(ValueError, match="0-d"):
        F.nll_loss(ember.tensor(1.0), np.array(0))
    with pytest.raises(ValueError, match="ignore_index"):
        F.cross_entropy(x, ember.tensor(np.full((4, 5), 0.2)), ignore_index=0)
    with pytest.raises(RuntimeError, match="ignore_index"):
        torch.nn.functional.cross_entropy(torch.zeros(4, 5), torch.full((4, 5), 0.2), ignore_index=0)
    with pytest.raises(TypeError):
        F.cross_entropy(x, t, None, -100)  # options after weight are keyword-only
    with pytest.raises(ValueError, match="same shape"):
        F.mse_loss(x, ember.zeros(5))
    with pytest.raises(ValueError, match="input's shape"):
        F.binary_cross_entropy(p, ember.tensor(np.full(5, 0.5)))
    with pytest.raises(ValueError, match="input's shape"):
        F.binary_cross_entropy_with_logits(x, ember.zeros(5, dtype=ember.float64))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.binary_cross_entropy_with_logits(x, p, pos_weight=ember.ones(4, dtype=ember.float64))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.binary_cross_entropy(p, p, ember.ones(2, 4, 5, dtype=ember.float64))
    with pytest.raises(ValueError, match="weight must have the input's shape"):
        F.mse_loss(x, p, weight=ember.ones(5, dtype=ember.float64))
    with pytest.raises(ValueError, match="beta"):
        F.smooth_l1_loss(x, p, beta=-1.0)
    with pytest.raises(ValueError, match="delta"):
        F.huber_loss(x, p, delta=0.0)
    with pytest.raises(ValueError, match="not both"):
        F.mse_loss(x, p, weight=ember.ones(4, 5, dtype=ember.float64), mask=np.ones((4, 5)))
    with pytest.raises(ValueError, match="do not broadcast"):
        F.kl_div(x, ember.zeros(3, dtype=ember.float64))


# ----------------------------------------------------------------------------- modules


def test_loss_modules_register_weights_as_buffers_named_like_torch(torch):
    w5 = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    tw5 = torch.tensor(w5)  # a copy: ember's buffer shares the NumPy array it is given, as PyTorch's its tensor
    pairs = [
        (nn.CrossEntropyLoss(w5, label_smoothing=0.1), torch.nn.CrossEntropyLoss(tw5)),
        (nn.NLLLoss(w5.copy()), torch.nn.NLLLoss(tw5)),
        (nn.BCELoss(w5.copy()), torch.nn.BCELoss(tw5)),
        (nn.BCEWithLogitsLoss(w5.copy(), pos_weight=w5.copy()), torch.nn.BCEWithLogitsLoss(tw5, pos_weight=tw5)),
        (nn.MSELoss(), torch.nn.MSELoss()), (nn.KLDivLoss(), torch.nn.KLDivLoss()),
        (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
    ]
    for ours, theirs in pairs:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict({k: v.numpy() * 2 for k, v in theirs.state_dict().items()})  # loads by torch's names
        for name, value in ours.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), theirs.state_dict()[name].numpy() * 2)
    m = nn.CrossEntropyLoss(w5).to(ember.float32)
    assert m.weight.dtype == np.float32


def test_loss_modules_match_torch_on_random_inputs(torch):
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((4, 5)), rng.uniform(size=(4, 5))
    t = np.array([0, 4, 2, 2])
    cases = [
        (nn.CrossEntropyLoss(reduction="sum", ignore_index=2), torch.nn.CrossEntropyLoss(reduction="sum",
                                                                                         ignore_index=2), t),
        (nn.NLLLoss(reduction="none"), torch.nn.NLLLoss(reduction="none"), t),
        (nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), y),
        (nn.L1Loss(), torch.nn.L1Loss(), y),
        (nn.SmoothL1Loss(beta=0.0), torch.nn.SmoothL1Loss(beta=0.0), y),
        (nn.HuberLoss("none", 0.3), torch.nn.HuberLoss("none", 0.3), y),
        (nn.KLDivLoss(reduction="batchmean", log_target=True), torch.nn.KLDivLoss(reduction="batchmean",
                                                                                  log_target=True), y),
        (nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), y),
    ]
    for ours, theirs, target in cases:
        out = ours(ember.tensor(x), ember.tensor(target) if target.dtype.kind == "f" else target)
        ref = theirs(torch.from_numpy(x), torch.from_numpy(target))
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12, err_msg=type(ours).__name__)
    out = nn.BCELoss()(ember.tensor(y), ember.tensor(y[::-1].copy()))
    ref = torch.nn.BCELoss()(torch.from_numpy(y), torch.from_numpy(y[::-1].copy()))
    assert out.item() == pytest.approx(ref.item(), rel=1e-12)


def test_loss_module_argument_errors(torch):
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="batchmean")
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="beta"):
        nn.SmoothL1Loss(beta=-0.5)
    with pytest.raises(ValueError, match="delta"):
        nn.HuberLoss(delta=-1.0)
