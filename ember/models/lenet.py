"""LeNet-5 (LeCun et al. 1998, with ReLU and max-pooling) for 28x28 single-channel images."""

from __future__ import annotations

from dataclasses import dataclass

from .. import nn
from ..nn import functional as F


@dataclass
class LeNet5Config:
    in_channels: int = 1
    num_classes: int = 10

    def __post_init__(self):
        if self.in_channels <= 0 or self.num_classes <= 0:
            raise ValueError(f"LeNet5Config: channels and classes must be positive, got {self}")


class LeNet5(nn.Module):
    """conv 6@5x5 pad 2 -> ReLU -> max-pool 2 -> conv 16@5x5 -> ReLU -> max-pool 2 -> 400-120-84-10.

    ReLU is applied after the pooling: max-pool and ReLU commute (both are monotone), and the
    pooled tensor is 4x smaller, so the network is the same function, computed cheaper.
    Shape: (N, 1, 28, 28) -> (N, 10).
    """

    def __init__(self, config: LeNet5Config | None = None, **overrides):
        super().__init__()
        self.config = config or LeNet5Config(**overrides)
        self.conv1 = nn.Conv2d(self.config.in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, self.config.num_classes)

    def forward(self, x):
        if x.ndim != 4 or x.shape[2:] != (28, 28):
            raise ValueError(f"LeNet5 expects (N, C, 28, 28) images, got {x.shape}")
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # (N, 6, 14, 14)
        x = F.relu(F.max_pool2d(self.conv2(x), 2))  # (N, 16, 5, 5)
        x = x.flatten(1)  # (N, 400)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
