"""Forward-only learners: ELM readouts and ensembles, deep ELM (target propagation and proximal ALS),
Hebbian and delta-rule readouts, and, for comparison, ELM + gradient fine-tuning, direct feedback
alignment and Forward-Forward.

Every learner has ``fit(X, y)`` and ``decision_function(X)`` (class scores); ``score`` is accuracy.
Images are (N, 1, H, W) float32, labels int. The closed-form ones stream their rows into the
ridge solver in chunks (with optional 1-pixel shifted views folded into the same sums).

Device: the closed-form and local-rule learners compute where the images and labels live (their
random draws are made on the host and moved there); the three that use gradient steps for
comparison (ELM + fine-tuning, DFA, Forward-Forward) run on the CPU only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import backend
from .features import FeatureMap, RandomProjection, on_device_of, shifted_views
from .solver import RidgeAccumulator, check_memory, one_hot


class Learner:
    classes: int = 10

    def fit(self, X: np.ndarray, y: np.ndarray) -> Learner:
        raise NotImplementedError

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.decision_function(X).argmax(axis=1)

    def score(self, X: np.ndarray, y: np.ndarray, chunk: int = 5000) -> float:
        hits = sum(int((self.predict(X[i:i + chunk]) == y[i:i + chunk]).sum()) for i in range(0, len(X), chunk))
        return hits / len(X)

    def stages(self) -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
        """Named steps from input to class scores, each applied to the previous one's output."""
        return [("scores", self.decision_function)]

    def pipeline(self):
        """The stages as an ember Module (a Sequential of array-function stages), so forward hooks,
        e.g. ``ember.nn.ActivationStats``, can watch a forward-only learner like any model."""
        from ..nn import Sequential
        from ..nn.module import Module
        from ..tensor import Tensor

        class Stage(Module):
            def __init__(self, fn):
                super().__init__()
                self.fn = fn

            def forward(self, x):
                return Tensor(self.fn(x.data))  # on the learner's device

        return Sequential({name: Stage(fn) for name, fn in self.stages()})


# ----------------------------------------------------------------------------- ELM readouts


class ELMClassifier(Learner):
    """Frozen (or unsupervised) features, then a ridge readout in closed form.

    Args:
        features: the feature map (fitted on the training images without labels).
        lam: λ > 0, or 'gcv' to choose it by generalised cross-validation.
        shift_views: 0, 4 or 8: also add the training images shifted by one pixel, as extra
            rows of the same Gram (memory unchanged, rows ×5 or ×9).
    """

    def __init__(self, features: FeatureMap, lam: float | str = "gcv", shift_views: int = 0, chunk: int = 2000,
                 budget: int | None = None):
        if lam != "gcv" and not float(lam) > 0:
            raise ValueError(f"ELMClassifier: λ must be > 0 or 'gcv', got {lam}")
        self.features, self.lam, self.shift_views, self.chunk, self.budget = features, lam, shift_views, chunk, budget

    def fit(self, X, y, on_progress: Callable[[float], None] | None = None):
        self.features.fit(X)
        T = one_hot(y, self.classes)
        acc = RidgeAccumulator(self.features.out_dim, self.classes, budget=self.budget, chunk_rows=self.chunk,
                               gcv=self.lam == "gcv")
        for i in range(0, len(X), self.chunk):
            for view in shifted_views(X[i:i + self.chunk], self.shift_views):
                acc.add(self.features(view), T[i:i + self.chunk])
            if on_progress:
                on_progress(min(1.0, (i + self.chunk) / len(X)))
        self.readout = acc.solve_gcv() if self.lam == "gcv" else acc.solve(float(self.lam))
        return self

    def decision_function(self, X):
        return backend.array_module(X).concatenate([self.readout.predict(self.features(X[i:i + self.chunk]))
                                                    for i in range(0, len(X), self.chunk)])

    def stages(self):
        return [("features", self.features), ("readout", self.readout.predict)]


class Ensemble(Learner):
    """M members (independent seeds or feature maps); class scores averaged."""

    def __init__(self, members: list[Learner]):
        if not members:
            raise ValueError("Ensemble: needs at least one member")
        self.members = members

    def fit(self, X, y, on_progress=None):
        for m, member in enumerate(self.members):
            member.fit(X, y)
            if on_progress:
                on_progress((m + 1) / len(self.members))
        return self

    def decision_function(self, X):
        return sum(m.decision_function(X) for m in self.members) / len(self.members)

    def stages(self):
        return [(f"member{m}.{name}", fn) for m, member in enumerate(self.members[:1]) for name, fn in member.stages()]


# ----------------------------------------------------------------------------- deep ELM


def _hidden(features: FeatureMap, X, chunk=2000) -> np.ndarray:
    return backend.array_module(X).concatenate([features(X[i:i + chunk]) for i in range(0, len(X), chunk)])


def _solve(H: np.ndarray, targets: np.ndarray, lam_rel: float, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights (d, c) and bias (c,) of targets on H, λ = lam_rel·trace(G)/d."""
    acc = RidgeAccumulator(H.shape[1], targets.shape[1])
    for i in range(0, len(H), chunk):
        acc.add(H[i:i + chunk], targets[i:i + chunk])
    G = acc.centred()[0]
    acc.solve(lam_rel * float(backend.array_module(G).trace(G)) / G.shape[0] + 1e-12)
    return acc.W.astype(np.float32), acc.bias.astype(np.float32)


def _back_project(target: np.ndarray, W: np.ndarray, bias: np.ndarray, mu: float = 1e-3) -> np.ndarray:
    """Minimum-norm H* with H* W + bias ≈ target: H* = (target − bias) (WᵀW + μI)⁻¹ Wᵀ  (W is (d, c))."""
    xp = backend.array_module(W)
    gram = W.T @ W
    diagonal = xp.arange(len(gram))
    gram[diagonal, diagonal] += mu * float(xp.trace(gram)) / len(gram)
    return ((target - bias) @ xp.linalg.solve(gram, W.T)).astype(np.float32)


def _random_layers(H0, widths, rng) -> list:
    """(W, b) per hidden layer, W ~ N(0, 2/fan_in) and b = 0, drawn on the host and placed on H0's device."""
    layers, d = [], H0.shape[1]
    for width in widths:
        W = (rng.standard_normal((d, width)) * math.sqrt(2.0 / d)).astype(np.float32)
        layers.append(on_device_of(H0, W, np.zeros(width, np.float32)))
        d = width
    return layers


class DeepELM(Learner):
    """Hidden layers solved by target propagation (alternating least squares).

    x -> frozen features H0 -> [W_l, ReLU] -> ... -> readout. Each cycle solves the readout,
    propagates the targets back through it and every hidden W by least squares, clips them at
    zero (ReLU feasibility: without the clip the cycle oscillates), re-solves each hidden W
    on its input, and runs the network forward again; a final readout solve ends it.
    """

    def __init__(self, features: FeatureMap, hidden: tuple[int, ...] = (4096,), cycles: int = 2,
                 lam_rel: float = 1e-3, seed: int = 0):
        self.features, self.hidden, self.cycles = features, tuple(hidden), cycles
        self.lam_rel, self.seed = lam_rel, seed

    def _forward(self, H0):
        hs = [H0]
        for W, b in self.layers:
            h = hs[-1] @ W
            h += b
            hs.append(backend.array_module(h).maximum(h, 0, out=h))
        return hs

    def fit(self, X, y, on_progress=None):
        self.features.fit(X)
        H0 = _hidden(self.features, X)
        check_memory("deep ELM activations", sum(H0.shape[0] * 4 * w * 3 for w in self.hidden))
        rng = np.random.default_rng(self.seed)
        self.layers = _random_layers(H0, self.hidden, rng)  # initial hidden weights: random ReLU layers
        T = one_hot(y, self.classes)
        for cycle in range(self.cycles):
            hs = self._forward(H0)
            readout = _solve(hs[-1], T, self.lam_rel)
            xp = backend.array_module(T)
            target = xp.maximum(_back_project(T, *readout), 0)
            for layer in range(len(self.layers) - 1, -1, -1):
                W, b = _solve(hs[layer], target, self.lam_rel)
                self.layers[layer] = (W, b)
                if layer:
                    target = xp.maximum(_back_project(target, W, b), 0)
            if on_progress:
                on_progress((cycle + 1) / (self.cycles + 1))
        self.readout = _solve(self._forward(H0)[-1], T, self.lam_rel)
        return self

    def decision_function(self, X):
        h = self._forward(_hidden(self.features, X))[-1]
        return h @ self.readout[0] + self.readout[1]

    def stages(self):
        def hidden(W, b):
            return lambda h: backend.array_module(h).maximum(h @ W + b, 0)

        return ([("features", self.features)] + [(f"hidden{i}", hidden(W, b)) for i, (W, b) in enumerate(self.layers)]
                + [("readout", lambda h: h @ self.readout[0] + self.readout[1])])


def _leaky(z, alpha):
    return backend.array_module(z).where(z >= 0, z, alpha * z)


def prox_leaky_relu(a: np.ndarray, m: np.ndarray, alpha: float, gamma: float, beta: float) -> np.ndarray:
    """argmin_z γ·(a − φ(z))² + β·(z − m)² for φ = LeakyReLU(α), element-wise and exactly.

    Each linear piece of φ gives a closed-form candidate (valid only on its side of 0), z = 0 is the
    third; the one with the lowest objective wins. a is the top-down target for the activation,
    m = A_prev·Wᵀ the bottom-up pre-activation.
    """
    def objective(z):
        return gamma * (a - _leaky(z, alpha)) ** 2 + beta * (z - m) ** 2

    xp = backend.array_module(m)
    z_pos = (gamma * a + beta * m) / (gamma + beta)
    z_neg = (gamma * alpha * a + beta * m) / (gamma * alpha * alpha + beta)
    cands = xp.stack([xp.where(z_pos >= 0, z_pos, 0.0), xp.where(z_neg < 0, z_neg, 0.0), xp.zeros_like(m)])
    best = xp.argmin(xp.stack([objective(c) for c in cands]), axis=0)
    return xp.take_along_axis(cands, best[None], axis=0)[0].astype(np.float32)


class ProximalALS(Learner):
    """Multi-layer ELM by proximal alternating least squares: ADMM without dual variables.

    Variables per hidden layer l: weights W_l, pre-activations Z_l, activations A_l (LeakyReLU α).
    Each cycle, from the top: the readout and each W_l are ridge solves (A_{l-1} -> Z_l); each A_l
    blends the top-down demand of the layer above with φ(Z_l) ((βWᵀW + γI) solve); each Z_l is
    the exact element-wise minimiser of γ(A_l − φ(z))² + β(z − A_{l-1}W_l)², blending the
    bottom-up pre-activation with the top-down target. No dual variables: the reference system
    found they cancel the top-down signal and diverge.
    """

    def __init__(self, features: FeatureMap, hidden: tuple[int, ...] = (2048,), cycles: int = 3, alpha: float = 0.1,
                 beta: float = 1.0, gamma: float = 1.0, lam_rel: float = 1e-3, seed: int = 0):
        self.features, self.hidden, self.cycles = features, tuple(hidden), cycles
        self.alpha, self.beta, self.gamma, self.lam_rel, self.seed = alpha, beta, gamma, lam_rel, seed

    def _forward(self, H0):
        acts = [H0]
        for W, b in self.layers:
            acts.append(_leaky(acts[-1] @ W + b, self.alpha).astype(np.float32))
        return acts

    def fit(self, X, y, on_progress=None):
        self.features.fit(X)
        H0 = _hidden(self.features, X)
        rng = np.random.default_rng(self.seed)
        self.layers = _random_layers(H0, self.hidden, rng)
        xp = backend.array_module(H0)
        T = one_hot(y, self.classes)
        acts = self._forward(H0)
        Z = [a @ W + b for a, (W, b) in zip(acts[:-1], self.layers)]
        beta, gamma = self.beta, self.gamma
        for cycle in range(self.cycles):
            Wo, bo = _solve(acts[-1], T, self.lam_rel)
            demand_W, demand_b, demand = Wo, bo, T  # what the layer above asks of A_l
            for layer in range(len(self.layers) - 1, -1, -1):
                # A_l: argmin β||demand − A W_up − b_up||² + γ||A − φ(Z_l)||²
                gram = beta * (demand_W @ demand_W.T)
                diagonal = xp.arange(len(gram))
                gram[diagonal, diagonal] += gamma
                rhs = beta * (demand - demand_b) @ demand_W.T + gamma * _leaky(Z[layer], self.alpha)
                A = xp.linalg.solve(gram, rhs.T).T.astype(np.float32)
                m = acts[layer] @ self.layers[layer][0] + self.layers[layer][1]
                Z[layer] = prox_leaky_relu(A, m, self.alpha, gamma, beta)
                W, b = _solve(acts[layer], Z[layer], self.lam_rel)
                self.layers[layer] = (W, b)
                demand_W, demand_b, demand = W, b, Z[layer]
            acts = self._forward(H0)
            if on_progress:
                on_progress((cycle + 1) / (self.cycles + 1))
        self.readout = _solve(acts[-1], T, self.lam_rel)
        return self

    def decision_function(self, X):
        return self._forward(_hidden(self.features, X))[-1] @ self.readout[0] + self.readout[1]

    def stages(self):
        def hidden(W, b):
            return lambda h: _leaky(h @ W + b, self.alpha)

        return ([("features", self.features)] + [(f"hidden{i}", hidden(W, b)) for i, (W, b) in enumerate(self.layers)]
                + [("readout", lambda h: h @ self.readout[0] + self.readout[1])])


# ----------------------------------------------------------------------------- local rules


class HebbianReadout(Learner):
    """Supervised Hebbian readout: ΔW = (η/n)·Tᵀ H per batch, then every class row normalised.

    Its fixed point puts each row along its class's mean feature vector: a nearest-centroid
    (cosine) classifier, blind to feature covariance."""

    def __init__(self, features: FeatureMap, epochs: int = 1, lr: float = 1.0, batch: int = 1000):
        self.features, self.epochs, self.lr, self.batch = features, epochs, lr, batch

    def fit(self, X, y, on_progress=None):
        self.features.fit(X)
        T = one_hot(y, self.classes)
        xp = backend.array_module(X)
        self.W = xp.zeros((self.classes, self.features.out_dim), np.float32)
        for epoch in range(self.epochs):
            for i in range(0, len(X), self.batch):
                H = self.features(X[i:i + self.batch])
                self.W += (self.lr / len(H)) * (T[i:i + self.batch].T @ H)
                self.W /= xp.linalg.norm(self.W, axis=1, keepdims=True) + 1e-12
            if on_progress:
                on_progress((epoch + 1) / self.epochs)
        return self

    def decision_function(self, X):
        return self.features(X) @ self.W.T

    def stages(self):
        return [("features", self.features), ("readout", lambda h: h @ self.W.T)]


class DeltaRuleReadout(Learner):
    """Widrow–Hoff LMS: ΔW = (η/n)·(T − H Wᵀ − b)ᵀ H, gradient descent on the readout's squared error
    only. The step is set below the stability bound 2/λ_max(HᵀH/n), λ_max by power iteration."""

    def __init__(self, features: FeatureMap, epochs: int = 5, step: float = 0.5, batch: int = 256, seed: int = 0):
        self.features, self.epochs, self.step, self.batch, self.seed = features, epochs, step, batch, seed

    def fit(self, X, y, on_progress=None):
        self.features.fit(X)
        T = one_hot(y, self.classes)
        # the update multiplies by [H 1]ᵀ[H 1]/n, uncentred: its top eigenvalue (often the mean's
        # direction) sets the stability bound
        xp = backend.array_module(X)
        sample = self.features(X[:2000]).astype(np.float64)
        sample = xp.hstack([sample, xp.ones((len(sample), 1))])
        v = on_device_of(X, np.random.default_rng(self.seed).standard_normal(sample.shape[1]))
        for _ in range(50):
            v = sample.T @ (sample @ v)
            v /= xp.linalg.norm(v)
        lam_max = float(v @ (sample.T @ (sample @ v))) / len(sample)
        self.eta = self.step * 2.0 / lam_max  # a fraction of the stability bound
        self.W = xp.zeros((self.classes, self.features.out_dim), np.float32)
        self.b = T.mean(axis=0)
        rng = np.random.default_rng(self.seed)
        for epoch in range(self.epochs):
            for idx in np.array_split(rng.permutation(len(X)), max(1, len(X) // self.batch)):
                idx = on_device_of(X, idx)
                H = self.features(X[idx])
                err = T[idx] - H @ self.W.T - self.b
                self.W += (self.eta / len(idx)) * (err.T @ H)
                self.b += (self.eta / len(idx)) * err.sum(axis=0)
            if on_progress:
                on_progress((epoch + 1) / self.epochs)
        return self

    def decision_function(self, X):
        return self.features(X) @ self.W.T + self.b

    def stages(self):
        return [("features", self.features), ("readout", lambda h: h @ self.W.T + self.b)]


# ----------------------------------------------------------------------------- with gradients, for comparison


class FineTunedELM(Learner):
    """An ELM (random ReLU layer + ridge readout) as the warm start of an MLP, then fine-tuned end to
    end with ember's autograd (Adam) for a few epochs: how much gradients add to the closed form."""

    def __init__(self, width: int = 2048, epochs: int = 2, lr: float = 1e-3, batch: int = 128, seed: int = 0):
        self.width, self.epochs, self.lr, self.batch, self.seed = width, epochs, lr, batch, seed

    def fit(self, X, y, on_progress=None):
        import ember
        from ember import nn
        from ember.data import DataLoader, TensorDataset
        from ember.train import fit as train

        features = RandomProjection(self.width, "relu", self.seed)
        elm = ELMClassifier(features, lam="gcv").fit(X, y)
        model = nn.Sequential(nn.Flatten(), nn.Linear(X[0].size, self.width), nn.ReLU(), nn.Linear(self.width, 10))
        with ember.no_grad():
            model[1].weight.data[...] = features.W.T
            model[1].bias.data[...] = features.b
            model[3].weight.data[...] = elm.readout.W.T.astype(np.float32)
            model[3].bias.data[...] = elm.readout.bias.astype(np.float32)
        ember.manual_seed(self.seed)
        opt = ember.optim.Adam(model.parameters(), lr=self.lr)
        train(model, opt, DataLoader(TensorDataset(X, y), batch_size=self.batch, shuffle=True, seed=self.seed),
              epochs=self.epochs, progress=False)
        self.model = model.eval()
        return self

    def decision_function(self, X):
        import ember

        with ember.no_grad():
            return np.concatenate([self.model(ember.from_numpy(X[i:i + 2000])).numpy()
                                   for i in range(0, len(X), 2000)])

    def pipeline(self):
        return self.model


class DirectFeedbackAlignment(Learner):
    """An MLP trained by direct feedback alignment (Nøkland 2016): each hidden layer gets the output
    error through its own fixed random matrix B_l, δ_l = (e B_l) ⊙ φ'(a_l); no error flows back
    through the forward weights. Plain SGD with momentum; tanh hidden units."""

    def __init__(self, hidden: tuple[int, ...] = (800, 800), epochs: int = 10, lr: float = 0.05,
                 batch: int = 64, seed: int = 0):
        self.hidden, self.epochs, self.lr, self.batch, self.seed = tuple(hidden), epochs, lr, batch, seed

    def _forward(self, x):
        hs, zs = [x], []
        for l, (W, b) in enumerate(self.layers):
            z = hs[-1] @ W + b
            zs.append(z)
            hs.append(np.tanh(z) if l < len(self.layers) - 1 else z)
        return hs, zs

    def fit(self, X, y, on_progress=None):
        rng = np.random.default_rng(self.seed)
        x = X.reshape(len(X), -1).astype(np.float32)
        sizes = (x.shape[1],) + self.hidden + (self.classes,)
        self.layers = [((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32), np.zeros(b, np.float32))
                       for a, b in zip(sizes[:-1], sizes[1:])]
        feedback = [(rng.standard_normal((self.classes, h)) / np.sqrt(self.classes)).astype(np.float32)
                    for h in self.hidden]
        velocity = [(np.zeros_like(W), np.zeros_like(b)) for W, b in self.layers]
        T = one_hot(y, self.classes)
        for epoch in range(self.epochs):
            lr = self.lr * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))
            for idx in np.array_split(rng.permutation(len(x)), len(x) // self.batch):
                hs, zs = self._forward(x[idx])
                logits = hs[-1] - hs[-1].max(axis=1, keepdims=True)
                p = np.exp(logits)
                p /= p.sum(axis=1, keepdims=True)
                e = (p - T[idx]) / len(idx)  # softmax cross-entropy error at the output
                deltas = [(e @ B) * (1 - np.tanh(z) ** 2) for B, z in zip(feedback, zs[:-1])] + [e]
                for l, ((W, b), d, (vW, vb)) in enumerate(zip(self.layers, deltas, velocity)):
                    vW *= 0.9
                    vW -= lr * (hs[l].T @ d)
                    vb *= 0.9
                    vb -= lr * d.sum(axis=0)
                    W += vW
                    b += vb
            if on_progress:
                on_progress((epoch + 1) / self.epochs)
        return self

    def decision_function(self, X):
        return self._forward(X.reshape(len(X), -1).astype(np.float32))[0][-1]

    def stages(self):
        def layer(l, W, b):
            last = l == len(self.layers) - 1
            return lambda h: (h.reshape(len(h), -1) @ W + b) if last else np.tanh(h.reshape(len(h), -1) @ W + b)

        return [(f"layer{l}", layer(l, W, b)) for l, (W, b) in enumerate(self.layers)]


class ForwardForward(Learner):
    """Hinton's Forward-Forward (2022): every layer learns locally to give high goodness Σh² to an image
    with its true label attached (positive) and low goodness to one with a wrong label (negative);
    layers see length-normalised inputs and no gradient crosses them. Prediction attaches each
    label in turn and picks the one with the most goodness over the layers. The label is appended
    as a one-hot vector scaled to the images' mean norm (overwriting pixels, as the paper does on
    MNIST's black border, drowns it when every pixel carries signal).

    lr 0.003 (Adam, mini-batches of 100): the 0.03 of full-batch reference implementations drives
    every first-layer pre-activation negative within an epoch on MNIST (a dead layer scores 9.8%,
    one class); a layer that dies raises an error instead of training on silently."""

    def __init__(self, hidden: tuple[int, ...] = (500, 500), epochs: int = 10, lr: float = 0.003,
                 threshold: float = 2.0, batch: int = 100, seed: int = 0):
        self.hidden, self.epochs, self.lr, self.threshold = tuple(hidden), epochs, lr, threshold
        self.batch, self.seed = batch, seed

    def _embed(self, x, labels):
        onehot = np.zeros((len(x), self.classes), np.float32)
        onehot[np.arange(len(x)), labels] = self.label_scale
        return np.hstack([x, onehot])

    @staticmethod
    def _normalise(h):
        return h / (np.linalg.norm(h, axis=1, keepdims=True) + 1e-6)

    @staticmethod
    def _initial_layers(sizes, rng):
        """(W, b) per layer: Kaiming-normal weights, zero biases."""
        return [((rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32), np.zeros(b, np.float32))
                for a, b in zip(sizes[:-1], sizes[1:])]

    def fit(self, X, y, on_progress=None):
        rng = np.random.default_rng(self.seed)
        x = X.reshape(len(X), -1).astype(np.float32)
        self.label_scale = float(np.linalg.norm(x[:2000], axis=1).mean())
        sizes = (x.shape[1] + self.classes,) + self.hidden
        self.layers = self._initial_layers(sizes, rng)
        moments = [[np.zeros_like(W), np.zeros_like(W), np.zeros_like(b), np.zeros_like(b)] for W, b in self.layers]
        step = 0
        for epoch in range(self.epochs):
            alive = [False] * len(self.layers)
            for idx in np.array_split(rng.permutation(len(x)), len(x) // self.batch):
                wrong = (y[idx] + rng.integers(1, self.classes, len(idx))) % self.classes
                pos, neg = self._normalise(self._embed(x[idx], y[idx])), self._normalise(self._embed(x[idx], wrong))
                step += 1
                for layer, ((W, b), m) in enumerate(zip(self.layers, moments)):
                    hp, hn = np.maximum(pos @ W + b, 0), np.maximum(neg @ W + b, 0)
                    alive[layer] = alive[layer] or bool(hp.any() or hn.any())
                    gp, gn = (hp * hp).sum(axis=1), (hn * hn).sum(axis=1)
                    # loss = softplus(θ − g_pos) + softplus(g_neg − θ); d/dg by the logistic function
                    dp = -1.0 / (1.0 + np.exp(np.clip(gp - self.threshold, -50, 50)))
                    dn = 1.0 / (1.0 + np.exp(np.clip(self.threshold - gn, -50, 50)))
                    gz_p, gz_n = 2 * hp * dp[:, None] / len(idx), 2 * hn * dn[:, None] / len(idx)
                    gW = pos.T @ gz_p + neg.T @ gz_n
                    gb = gz_p.sum(axis=0) + gz_n.sum(axis=0)
                    for grad, param, mo, ve in ((gW, W, m[0], m[1]), (gb, b, m[2], m[3])):  # Adam
                        mo *= 0.9
                        mo += 0.1 * grad
                        ve *= 0.999
                        ve += 0.001 * grad * grad
                        param -= self.lr * (mo / (1 - 0.9**step)) / (np.sqrt(ve / (1 - 0.999**step)) + 1e-8)
                    pos, neg = self._normalise(hp), self._normalise(hn)
            if not all(alive):
                raise RuntimeError(f"ForwardForward: layer {alive.index(False)} died in epoch {epoch + 1} (every "
                                   f"ReLU output zero for every sample); lower lr (now {self.lr})")
            if on_progress:
                on_progress((epoch + 1) / self.epochs)
        return self

    def decision_function(self, X):
        x = X.reshape(len(X), -1).astype(np.float32)
        scores = np.zeros((len(x), self.classes), np.float32)
        for label in range(self.classes):
            h = self._normalise(self._embed(x, np.full(len(x), label)))
            for W, b in self.layers:
                h = np.maximum(h @ W + b, 0)
                scores[:, label] += (h * h).sum(axis=1)
                h = self._normalise(h)
        return scores
