"""Multi-layer perceptron for flattened images (MNIST: 784-256-128-10)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import nn


@dataclass
class MLPConfig:
    sizes: tuple[int, ...] = (784, 256, 128, 10)  # input, hidden..., classes
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 2 or min(self.sizes) <= 0:
            raise ValueError(f"MLPConfig: sizes needs at least input and output, all positive; got {self.sizes}")
        if self.activation not in nn.layers.ACTIVATIONS:
            raise ValueError(f"MLPConfig: unknown activation {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MLPConfig: dropout must be in [0, 1), got {self.dropout}")


class MLP(nn.Module):
    """Linear layers with an activation (and optional dropout) between them; logits out.

    Shape: (N, sizes[0]) or (N, C, H, W) flattened to (N, sizes[0]) -> (N, sizes[-1]).
    """

    def __init__(self, config: MLPConfig | None = None, **overrides):
        super().__init__()
        self.config = config or MLPConfig(**overrides)
        sizes = self.config.sizes
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.activation(self.config.activation))
                if self.config.dropout:
                    layers.append(nn.Dropout(self.config.dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
