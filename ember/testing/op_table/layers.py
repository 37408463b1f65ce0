"""Layer rows: each layer, its PyTorch twin with copied parameters, and an input shape."""

from __future__ import annotations

import numpy as np

import ember.nn as nn

from .case import LayerCase, _perturbed, _twin
from .references import torch_kan_linear

LAYERS: list[LayerCase] = [
    LayerCase("Linear", lambda: nn.Linear(4, 3), _twin(lambda T: T.nn.Linear(4, 3)), (5, 4)),
    LayerCase("Linear_nobias", lambda: nn.Linear(4, 3, bias=False), _twin(lambda T: T.nn.Linear(4, 3, bias=False)),
              (2, 5, 4)),
    LayerCase("Conv2d", lambda: nn.Conv2d(2, 3, 3, padding=1), _twin(lambda T: T.nn.Conv2d(2, 3, 3, padding=1)),
              (2, 2, 5, 5)),
    LayerCase("Conv2d_stride", lambda: nn.Conv2d(2, 2, 3, stride=2),
              _twin(lambda T: T.nn.Conv2d(2, 2, 3, stride=2)), (1, 2, 7, 7)),
    LayerCase("MaxPool2d", lambda: nn.MaxPool2d(2), _twin(lambda T: T.nn.MaxPool2d(2)), (2, 2, 4, 4)),
    LayerCase("AvgPool2d", lambda: nn.AvgPool2d(2), _twin(lambda T: T.nn.AvgPool2d(2)), (2, 2, 4, 4)),
    LayerCase("Flatten", lambda: nn.Flatten(), _twin(lambda T: T.nn.Flatten()), (2, 2, 3, 3)),
    LayerCase("ReLU", lambda: nn.ReLU(), _twin(lambda T: T.nn.ReLU()), (3, 4)),
    LayerCase("Tanh", lambda: nn.Tanh(), _twin(lambda T: T.nn.Tanh()), (3, 4)),
    LayerCase("Sigmoid", lambda: nn.Sigmoid(), _twin(lambda T: T.nn.Sigmoid()), (3, 4)),
    LayerCase("GELU", lambda: nn.GELU(), _twin(lambda T: T.nn.GELU()), (3, 4)),
    LayerCase("GELU_tanh", lambda: nn.GELU("tanh"), _twin(lambda T: T.nn.GELU("tanh")), (3, 4)),
    LayerCase("SiLU", lambda: nn.SiLU(), _twin(lambda T: T.nn.SiLU()), (3, 4)),
    LayerCase("LayerNorm", lambda: _perturbed(nn.LayerNorm(4)), _twin(lambda T: T.nn.LayerNorm(4)), (2, 3, 4)),
    LayerCase("BatchNorm1d_train", lambda: _perturbed(nn.BatchNorm1d(3)), _twin(lambda T: T.nn.BatchNorm1d(3)),
              (5, 3)),
    LayerCase("BatchNorm2d_train", lambda: _perturbed(nn.BatchNorm2d(3)), _twin(lambda T: T.nn.BatchNorm2d(3)),
              (4, 3, 2, 2)),
    LayerCase("BatchNorm2d_eval", lambda: _perturbed(nn.BatchNorm2d(3)), _twin(lambda T: T.nn.BatchNorm2d(3)),
              (4, 3, 2, 2), train=False),
    LayerCase("Embedding", lambda: nn.Embedding(6, 3), _twin(lambda T: T.nn.Embedding(6, 3)), (2, 4),
              integer_input=6),
    LayerCase("Dropout_eval", lambda: nn.Dropout(0.5), _twin(lambda T: T.nn.Dropout(0.5)), (3, 4), train=False),
    LayerCase("KANLinear", lambda: nn.KANLinear(3, 2, grid_size=4, grid_range=(-2, 2)),
              lambda T, m: _TorchKAN(T, m), (5, 3)),
    LayerCase("Sequential_MLP", lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)),
              _twin(lambda T: T.nn.Sequential(T.nn.Linear(4, 6), T.nn.Tanh(), T.nn.Linear(6, 2))), (3, 4)),
]


def _TorchKAN(T, m):  # noqa: N802 - a factory that stands in for a class
    """A PyTorch module computing the KANLinear equation with m's parameters copied in."""

    class TorchKAN(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.base_weight = T.nn.Parameter(T.from_numpy(np.array(m.base_weight.numpy(), dtype=np.float64)))
            self.spline_weight = T.nn.Parameter(T.from_numpy(np.array(m.spline_weight.numpy(), dtype=np.float64)))
            self.spline_scaler = T.nn.Parameter(T.from_numpy(np.array(m.spline_scaler.numpy(), dtype=np.float64)))
            self.register_buffer("grid", T.from_numpy(np.array(m.grid.numpy(), dtype=np.float64)))
            self.k = m.spline_order

        def forward(self, x):
            knots = self.grid.numpy()
            return torch_kan_linear(T, x, self.base_weight, self.spline_weight, self.spline_scaler, knots, self.k)

    return TorchKAN()
