"""MLP and LeNet-5: shapes, parameter counts, configs, parity with PyTorch twins."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.models import MLP, MODELS, LeNet5, MLPConfig, build


def test_default_shapes_and_parameter_counts():
    x = ember.randn(3, 1, 28, 28)
    assert MLP()(x).shape == (3, 10) and LeNet5()(x).shape == (3, 10)
    assert MLP().num_parameters() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert LeNet5().num_parameters() == 61706  # the published LeNet-5 (ReLU/max-pool variant) count


def test_mlp_config():
    m = MLP(sizes=(784, 32, 16, 10), activation="tanh", dropout=0.1)
    assert [type(l).__name__ for l in m.net] == ["Flatten", "Linear", "Tanh", "Dropout", "Linear", "Tanh",
                                                 "Dropout", "Linear"]
    with pytest.raises(ValueError, match="activation"):
        MLPConfig(activation="swish")
    with pytest.raises(ValueError, match="sizes"):
        MLPConfig(sizes=(784,))
    with pytest.raises(ValueError, match="unknown config keys"):
        build("mlp", {"widths": [1, 2]})
    with pytest.raises(ValueError, match="unknown model"):
        build("resnet")
    assert set(MODELS) >= {"mlp", "lenet"}


def test_lenet_rejects_wrong_image_size():
    with pytest.raises(ValueError, match="28, 28"):
        LeNet5()(ember.randn(1, 1, 32, 32))


def _torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10)).double()


@pytest.mark.parametrize("kind", ["mlp", "lenet"])
def test_forward_backward_match_pytorch(kind, torch):
    model = build(kind).double()
    if kind == "mlp":
        tm = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).double()
        tparams = [p for p in tm.parameters()]
    else:
        tm = _torch_lenet(torch)
        tparams = [p for p in tm.parameters()]
    ours = list(model.parameters())
    for p, tp in zip(ours, tparams):
        tp.data.copy_(torch.from_numpy(p.numpy()))
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28))
    y = np.array([1, 0, 9, 3])
    loss = ember.nn.functional.cross_entropy(model(ember.tensor(x)), y)
    tloss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-12)
    loss.backward()
    tloss.backward()
    for p, tp in zip(ours, tparams):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12)
