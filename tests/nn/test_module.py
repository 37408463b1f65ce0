"""Module: registration, traversal, modes, state_dict checks, hooks, repr, dtype moves."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        self.norm = nn.BatchNorm1d(3)
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))

    def forward(self, x):
        return self.norm(self.body(x)) * self.scale


def test_named_parameters_buffers_and_children():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "norm.weight",
                     "norm.bias"]
    assert [n for n, _ in net.named_buffers()] == ["norm.running_mean", "norm.running_var"]
    assert [n for n, _ in net.named_children()] == ["body", "norm"]
    assert len(list(net.modules())) == 6
    assert net.num_parameters() == 3 + 4 * 8 + 8 + 8 * 3 + 3 + 3 + 3


def test_shared_parameter_is_listed_once():
    a = nn.Linear(3, 3)
    b = nn.Linear(3, 3)
    b.weight = a.weight
    seq = nn.Sequential(a, b)
    assert len(list(seq.parameters())) == 3


def test_reassigning_an_attribute_unregisters_it():
    m = nn.Linear(2, 2)
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    m.weight = "not a parameter"
    assert list(m.parameters()) == []


def test_forgetting_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(RuntimeError, match="super"):
        Bad()


def test_train_eval_propagate():
    net = Net().eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip_includes_buffers():
    a, b = Net(), Net()
    a.norm.running_mean.data[:] = 5.0
    b.load_state_dict(a.state_dict())
    for (n1, t1), (n2, t2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert n1 == n2
        np.testing.assert_array_equal(t1.numpy(), t2.numpy())


def _snapshot(m):
    return {k: v.numpy().copy() for k, v in m.state_dict().items()}


def _unchanged(m, snap):
    return all(np.array_equal(v.numpy(), snap[k]) for k, v in m.state_dict().items())


def test_load_state_dict_strict_errors_leave_the_model_untouched():
    net, other = Net(), Net()
    snap = _snapshot(net)
    state = other.state_dict()
    missing = dict(state)
    missing.pop("scale")
    with pytest.raises(RuntimeError, match="missing keys.*scale"):
        net.load_state_dict(missing)
    assert _unchanged(net, snap)
    extra = dict(state, bogus=ember.ones(1))
    with pytest.raises(RuntimeError, match="unexpected keys.*bogus"):
        net.load_state_dict(extra)
    assert _unchanged(net, snap)
    bad_shape = dict(state)
    bad_shape["body.0.weight"] = ember.ones(8, 5)
    with pytest.raises(RuntimeError, match=r"body\.0\.weight: shape \(8, 5\).*\(8, 4\)"):
        net.load_state_dict(bad_shape)
    assert _unchanged(net, snap)


def test_load_state_dict_non_strict_reports_keys():
    net = Net()
    state = Net().state_dict()
    state.pop("scale")
    state["extra"] = ember.ones(1)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["scale"] and unexpected == ["extra"]


def test_forward_hooks_run_replace_and_remove():
    m = nn.Linear(3, 2)
    seen = []
    h = m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0].shape, out.shape)))
    x = ember.randn(4, 3)
    m(x)
    assert seen == [(m, (4, 3), (4, 2))]
    h2 = m.register_forward_hook(lambda mod, inp, out: out * 0.0)
    assert float(m(x).abs().sum().item()) == 0.0
    h.remove()
    h2.remove()
    m(x)
    assert len(seen) == 2 and float(m(x).abs().sum().item()) > 0  # removed hooks no longer run
    pre = m.register_forward_pre_hook(lambda mod, inp: (inp[0] * 0.0,))
    np.testing.assert_allclose(m(x).numpy(), np.broadcast_to(m.bias.numpy(), (4, 2)), rtol=1e-6)
    pre.remove()


def test_repr_is_nested_like_pytorch():
    text = repr(nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)))
    assert text == (
        "Sequential(\n"
        "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        ")"
    )


def test_zero_grad_and_to_double():
    net = Net()
    x = ember.randn(5, 4)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.norm.running_var.dtype == np.float64
    assert net(ember.randn(5, 4, dtype=ember.float64)).dtype == np.float64


def test_containers():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    ml.append(nn.Tanh())
    assert len(ml) == 3 and isinstance(ml[2], nn.Tanh) and len(list(ml.parameters())) == 2
    with pytest.raises(TypeError, match="Module"):
        ml.append(3)
    md = nn.ModuleDict({"a": nn.Linear(2, 2)})
    md["b"] = nn.ReLU()
    assert "a" in md and md.keys() == ["a", "b"]
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="positive"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="Conv2d"):
        nn.Conv2d(1, 2, 0)
    with pytest.raises(ValueError, match="features"):
        nn.Linear(3, 2)(ember.ones(4, 5))
    with pytest.raises(ValueError, match="channels"):
        nn.Conv2d(3, 2, 3)(ember.ones(1, 2, 5, 5))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        nn.Conv2d(1, 2, 5)(ember.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="BatchNorm2d"):
        nn.BatchNorm2d(3)(ember.ones(2, 4, 2, 2))
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.5)
    with pytest.raises(IndexError, match="out of range"):
        nn.Embedding(5, 2)(ember.tensor([0, 5]))
