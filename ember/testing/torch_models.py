"""PyTorch twins of ember's MLP and LeNet-5 holding their weights: the reference side of the benchmarks (never
imported by ember itself; the GPT's twin is ``ember.testing.torch_gpt``)."""

from __future__ import annotations


def torch_twin(torch, kind: str, model):
    """The same network ("mlp" or "lenet") in PyTorch, with ``model``'s weights copied in."""
    nn = torch.nn
    if kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10))
    elif kind == "lenet":
        net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    else:
        raise ValueError(f"torch_twin: kind must be 'mlp' or 'lenet', got {kind!r}")
    with torch.no_grad():
        for tp, p in zip(net.parameters(), model.parameters()):
            tp.copy_(torch.from_numpy(p.numpy().copy()))
    return net
