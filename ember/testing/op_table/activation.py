"""Op-table rows: activations, (log-)softmax / softmin and dropout; layer rows for the activation modules.

Inputs are standard normal; rows that need the far regions of an activation (relu6 above 6,
hardswish beyond ±3) scale them first. Gradients exactly at the kinks are compared with
PyTorch in ``tests/ops/test_activations.py`` (finite differences cannot check a kink).
"""

from __future__ import annotations

import ember.nn as nn
import ember.nn.functional as F

from .case import LayerCase, OpCase, _twin


def _torch_hardsigmoid(T, x):
    """hardsigmoid as relu6(x + 3)/6: PyTorch's float64 hardsigmoid kernel multiplies its gradient by 1/6
    rounded to float32 (3e-8 off); relu6 has the same kinks and value, with the exact 1/6."""
    return T.nn.functional.relu6(x + 3) / 6


OPS: list[OpCase] = [
    OpCase("sigmoid", lambda a: a.sigmoid(), lambda T, a: a.sigmoid(), ((3, 4),)),
    OpCase("relu", lambda a: a.relu(), lambda T, a: a.relu(), ((3, 4),), domain="away_from_zero"),
    OpCase("gelu", lambda a: F.gelu(a), lambda T, a: T.nn.functional.gelu(a), ((3, 4),)),
    OpCase(
        "gelu_tanh",
        lambda a: F.gelu(a, approximate="tanh"),
        lambda T, a: T.nn.functional.gelu(a, approximate="tanh"),
        ((3, 4),),
    ),
    OpCase("silu", lambda a: F.silu(a), lambda T, a: T.nn.functional.silu(a), ((3, 4),)),
    OpCase("leaky_relu", lambda a: F.leaky_relu(a), lambda T, a: T.nn.functional.leaky_relu(a), ((3, 4),)),
    OpCase("leaky_relu_slope", lambda a: F.leaky_relu(a, 0.3), lambda T, a: T.nn.functional.leaky_relu(a, 0.3),
           ((2, 3, 2),)),
    OpCase("leaky_relu_negative_slope", lambda a: F.leaky_relu(a, negative_slope=-0.5),
           lambda T, a: T.nn.functional.leaky_relu(a, negative_slope=-0.5), ((5,),)),
    OpCase("leaky_relu_0d", lambda a: F.leaky_relu(a, 0.2), lambda T, a: T.nn.functional.leaky_relu(a, 0.2), ((),)),
    OpCase("elu", lambda a: F.elu(a), lambda T, a: T.nn.functional.elu(a), ((3, 4),)),
    OpCase("elu_alpha", lambda a: F.elu(a, alpha=0.7), lambda T, a: T.nn.functional.elu(a, alpha=0.7), ((3, 4),)),
    OpCase("selu", lambda a: F.selu(a), lambda T, a: T.nn.functional.selu(a), ((3, 4),)),
    OpCase("selu_0d", lambda a: F.selu(a), lambda T, a: T.nn.functional.selu(a), ((),)),
    OpCase("celu", lambda a: F.celu(a), lambda T, a: T.nn.functional.celu(a), ((3, 4),)),
    # alpha exact in float32: PyTorch's celu backward uses 1/float32(alpha) (~1e-8 off for other alphas in float64)
    OpCase("celu_alpha", lambda a: F.celu(a, 1.75), lambda T, a: T.nn.functional.celu(a, 1.75), ((4, 3),)),
    OpCase("softplus", lambda a: F.softplus(a), lambda T, a: T.nn.functional.softplus(a), ((3, 4),)),
    OpCase("softplus_beta_threshold", lambda a: F.softplus(a * 3, beta=2.0, threshold=4.0),
           lambda T, a: T.nn.functional.softplus(a * 3, beta=2.0, threshold=4.0), ((4, 5),)),
    OpCase("softplus_0d", lambda a: F.softplus(a, beta=0.5), lambda T, a: T.nn.functional.softplus(a, beta=0.5),
           ((),)),
    OpCase("softsign", lambda a: F.softsign(a), lambda T, a: T.nn.functional.softsign(a), ((3, 4),)),
    OpCase("hardtanh", lambda a: F.hardtanh(a * 2), lambda T, a: T.nn.functional.hardtanh(a * 2), ((4, 5),)),
    OpCase("hardtanh_bounds", lambda a: F.hardtanh(a, min_val=-0.5, max_val=1.5),
           lambda T, a: T.nn.functional.hardtanh(a, min_val=-0.5, max_val=1.5), ((4, 5),)),
    OpCase("relu6", lambda a: F.relu6(a * 4), lambda T, a: T.nn.functional.relu6(a * 4), ((4, 5),)),
    OpCase("hardswish", lambda a: F.hardswish(a * 3), lambda T, a: T.nn.functional.hardswish(a * 3), ((4, 5),)),
    OpCase("hardsigmoid", lambda a: F.hardsigmoid(a * 3), lambda T, a: _torch_hardsigmoid(T, a * 3), ((4, 5),)),
    OpCase("mish", lambda a: F.mish(a * 3), lambda T, a: T.nn.functional.mish(a * 3), ((3, 4),)),
    OpCase("mish_0d", lambda a: F.mish(a), lambda T, a: T.nn.functional.mish(a), ((),)),
    OpCase("logsigmoid", lambda a: F.logsigmoid(a * 5), lambda T, a: T.nn.functional.logsigmoid(a * 5), ((3, 4),)),
    OpCase("logsigmoid_0d", lambda a: F.logsigmoid(a), lambda T, a: T.nn.functional.logsigmoid(a), ((),)),
    OpCase("softmax", lambda x: F.softmax(x, axis=1), lambda T, x: T.softmax(x, dim=1), ((3, 4, 2),)),
    OpCase("softmax_dim", lambda x: F.softmax(x, dim=0), lambda T, x: T.softmax(x, dim=0), ((3, 4),)),
    OpCase("softmax_0d", lambda x: F.softmax(x, dim=0), lambda T, x: T.softmax(x, dim=0), ((),)),
    OpCase("log_softmax", lambda x: F.log_softmax(x), lambda T, x: T.log_softmax(x, dim=-1), ((3, 5),)),
    OpCase("log_softmax_dim", lambda x: F.log_softmax(x, dim=-2), lambda T, x: T.log_softmax(x, dim=-2),
           ((3, 4, 2),)),
    OpCase("softmin", lambda x: F.softmin(x), lambda T, x: T.nn.functional.softmin(x, dim=-1), ((3, 5),)),
    OpCase("softmin_dim", lambda x: F.softmin(x, dim=1), lambda T, x: T.nn.functional.softmin(x, dim=1),
           ((2, 3, 4),)),
    OpCase("dropout", lambda x: F.dropout(x, 0.3), None, ((5, 6),), reseed=True),
]


def _hardsigmoid_twin(T):
    """PyTorch twin of nn.Hardsigmoid with the exact 1/6 (see ``_torch_hardsigmoid``)."""

    class Hardsigmoid(T.nn.Module):
        def forward(self, x):
            return _torch_hardsigmoid(T, x)

    return Hardsigmoid()


LAYERS: list[LayerCase] = [
    LayerCase("ReLU6", lambda: nn.ReLU6(), _twin(lambda T: T.nn.ReLU6()), (3, 4)),
    LayerCase("LeakyReLU", lambda: nn.LeakyReLU(0.2), _twin(lambda T: T.nn.LeakyReLU(0.2)), (3, 4)),
    LayerCase("ELU", lambda: nn.ELU(alpha=0.5), _twin(lambda T: T.nn.ELU(alpha=0.5)), (3, 4)),
    LayerCase("SELU", lambda: nn.SELU(), _twin(lambda T: T.nn.SELU()), (3, 4)),
    LayerCase("CELU", lambda: nn.CELU(alpha=2.0), _twin(lambda T: T.nn.CELU(alpha=2.0)), (3, 4)),
    LayerCase("Softplus", lambda: nn.Softplus(beta=2.0, threshold=1.0), _twin(lambda T: T.nn.Softplus(2.0, 1.0)),
              (3, 4)),
    LayerCase("Softsign", lambda: nn.Softsign(), _twin(lambda T: T.nn.Softsign()), (3, 4)),
    LayerCase("Hardtanh", lambda: nn.Hardtanh(-0.5, 0.5), _twin(lambda T: T.nn.Hardtanh(-0.5, 0.5)), (3, 4)),
    LayerCase("Hardswish", lambda: nn.Hardswish(), _twin(lambda T: T.nn.Hardswish()), (3, 4)),
    LayerCase("Hardsigmoid", lambda: nn.Hardsigmoid(), _twin(_hardsigmoid_twin), (3, 4)),
    LayerCase("Mish", lambda: nn.Mish(), _twin(lambda T: T.nn.Mish()), (3, 4)),
    LayerCase("LogSigmoid", lambda: nn.LogSigmoid(), _twin(lambda T: T.nn.LogSigmoid()), (3, 4)),
    LayerCase("Softmax_dim", lambda: nn.Softmax(dim=1), _twin(lambda T: T.nn.Softmax(dim=1)), (2, 3, 4)),
    LayerCase("Softmin", lambda: nn.Softmin(dim=-1), _twin(lambda T: T.nn.Softmin(dim=-1)), (3, 4)),
    LayerCase("LogSoftmax", lambda: nn.LogSoftmax(dim=1), _twin(lambda T: T.nn.LogSoftmax(dim=1)), (3, 4)),
    LayerCase("Sequential_inplace_activations",
              lambda: nn.Sequential(nn.Linear(4, 5), nn.LeakyReLU(0.1, inplace=True), nn.Linear(5, 3),
                                    nn.ELU(inplace=True)),
              _twin(lambda T: T.nn.Sequential(T.nn.Linear(4, 5), T.nn.LeakyReLU(0.1, inplace=True),
                                              T.nn.Linear(5, 3), T.nn.ELU(inplace=True))), (3, 4)),
]
