"""A hand-written NumPy training step for the MLP (no framework): the floor for ember's overhead.

Forward and backward written out on raw arrays, with the same tricks ember's ops use (bias
added in place, no input gradient for the first layer), and the same ten-pass Adam kernel.
The benchmark times it beside ember and PyTorch to show how much of ember's step is framework
overhead (autograd, dispatch, modules) rather than arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from ember.optim.adam import _adam_update


class NumpyMLP:
    def __init__(self, weights: list[np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [np.array(w, dtype=np.float32) for w in weights]  # W1, b1, W2, b2, W3, b3
        self.M = [np.zeros_like(p) for p in self.params]
        self.V = [np.zeros_like(p) for p in self.params]
        self.tmp = [np.empty_like(p) for p in self.params]
        self.lr, (self.b1, self.b2), self.eps, self.t = lr, betas, eps, 0

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        w1, b1, w2, b2, w3, b3 = self.params
        n = len(x)
        h0 = x.reshape(n, -1)
        a1 = h0 @ w1.T
        a1 += b1
        h1 = np.maximum(a1, 0)
        a2 = h1 @ w2.T
        a2 += b2
        h2 = np.maximum(a2, 0)
        z = h2 @ w3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        s = p.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - z[np.arange(n), y]))
        p /= s
        p[np.arange(n), y] -= 1.0
        p *= 1.0 / n
        g3 = p
        grads = [None] * 6
        grads[4], grads[5] = g3.T @ h2, g3.sum(axis=0)
        g2 = g3 @ w3
        g2 *= a2 > 0
        grads[2], grads[3] = g2.T @ h1, g2.sum(axis=0)
        g1 = g2 @ w2
        g1 *= a1 > 0
        grads[0], grads[1] = g1.T @ h0, g1.sum(axis=0)
        self._adam(grads)
        return loss

    def _adam(self, grads) -> None:
        self.t += 1
        b1, b2 = self.b1, self.b2
        s2 = math.sqrt((1 - b2) / (1 - b2**self.t))
        step = self.lr * (1 - b1) / ((1 - b1**self.t) * s2)
        eps = self.eps / s2
        for p, g, M, V, tmp in zip(self.params, grads, self.M, self.V, self.tmp):
            _adam_update(p, g, M, V, tmp, b1, b2, step, eps, 1.0, np)
