"""Feature maps for forward-only learners: random projections, random Fourier features, random and
PCA convolutional front-ends, and 1-pixel shifted views for augmentation.

A feature map is fitted without labels (``fit``: random draws, PCA filters, standardisation
statistics) and then maps a chunk of inputs to a float32 (n, out_dim) array (``__call__``), so
learners can stream rows into the ridge solver. The convolutions run on ember's conv ops.

Device: a map computes where its input lives. ``fit`` draws its random parameters on the host (the
same numbers on every device) and moves them to the device of the images it is fitted on; PCA
filters are learned on the host from a sample. Calls then stay on that device (``array_module``).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor


class FeatureMap:
    """Base class: ``fit(X)`` once (unsupervised), then ``features = map(X_chunk)``."""

    out_dim: int = 0

    def fit(self, X: np.ndarray) -> FeatureMap:
        return self

    def __call__(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def transform(self, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """All of X, chunk by chunk (for small data or tests; learners stream instead)."""
        return backend.array_module(X).concatenate([self(X[i:i + chunk]) for i in range(0, len(X), chunk)])


def on_device_of(reference, *arrays):
    """``arrays`` (drawn on the host) moved to ``reference``'s device; one array or a tuple."""
    dev = backend.device_of(reference)
    moved = tuple(backend.to_device(a, dev) for a in arrays)
    return moved[0] if len(moved) == 1 else moved


def to_host(array) -> np.ndarray:
    return backend.to_device(array, backend.CPU)


def _flat(X):
    return X.reshape(len(X), -1).astype(np.float32, copy=False)


class RandomProjection(FeatureMap):
    """h = act(x Wᵀ + b) with W ~ N(0, 2/in) (Kaiming) and b ~ N(0, 0.1²): ELM hidden neurons."""

    def __init__(self, width: int, activation: str = "relu", seed: int = 0):
        if activation not in ("relu", "tanh"):
            raise ValueError(f"RandomProjection: activation must be 'relu' or 'tanh', got {activation!r}")
        self.out_dim, self.activation, self.seed = width, activation, seed
        self.W: np.ndarray | None = None

    def fit(self, X):
        d = _flat(X[:1]).shape[1]
        rng = np.random.default_rng(self.seed)
        self.W = (rng.standard_normal((d, self.out_dim)) * np.sqrt(2.0 / d)).astype(np.float32)
        self.b = (0.1 * rng.standard_normal(self.out_dim)).astype(np.float32)
        self.W, self.b = on_device_of(X, self.W, self.b)
        return self

    def __call__(self, X):
        h = _flat(X) @ self.W
        h += self.b
        xp = backend.array_module(h)
        return xp.maximum(h, 0, out=h) if self.activation == "relu" else xp.tanh(h, out=h)


class RandomFourier(FeatureMap):
    """z(x) = sqrt(2/D)·cos(x ω + b), ω ~ N(0, 2γ I), b ~ U[0, 2π]: E[z(x)·z(y)] = exp(-γ||x - y||²)
    (Rahimi and Recht 2007; note the factor 2, which the reference system left out)."""

    def __init__(self, width: int, gamma: float | None = None, seed: int = 0):
        if gamma is not None and gamma <= 0:
            raise ValueError(f"RandomFourier: gamma must be > 0, got {gamma}")
        self.out_dim, self.gamma, self.seed = width, gamma, seed

    def fit(self, X):
        x = _flat(X)
        d = x.shape[1]
        gamma = self.gamma if self.gamma is not None else 1.0 / (d * float(x[:5000].var()))  # sklearn's 'scale'
        self.gamma_ = gamma
        rng = np.random.default_rng(self.seed)
        self.omega = (rng.standard_normal((d, self.out_dim)) * np.sqrt(2.0 * gamma)).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, self.out_dim).astype(np.float32)
        self.omega, self.phase = on_device_of(X, self.omega, self.phase)
        return self

    def __call__(self, X):
        z = _flat(X) @ self.omega
        z += self.phase
        backend.array_module(z).cos(z, out=z)
        z *= np.float32(np.sqrt(2.0 / self.out_dim))
        return z


def _conv(maps: np.ndarray, filters: np.ndarray, padding: int) -> np.ndarray:
    with no_grad():
        return F.conv2d(Tensor(maps), Tensor(filters), padding=padding).data  # on the maps' device


def _pool(maps: np.ndarray, size: int, kind: str) -> np.ndarray:
    if size <= 1:
        return maps
    with no_grad():
        t = Tensor(maps)
        return (F.max_pool2d(t, size) if kind == "max" else F.avg_pool2d(t, size)).data


def _nonlinearity(h: np.ndarray, kind: str) -> np.ndarray:
    xp = backend.array_module(h)
    if kind == "relu":
        return xp.maximum(h, 0, out=h)
    if kind == "abs":
        return xp.abs(h, out=h)
    raise ValueError(f"unknown nonlinearity {kind!r}; choose 'relu' or 'abs'")


class RandomConv(FeatureMap):
    """Random filters (Kaiming normal), nonlinearity, then pooling: C_out·12·12 features for 28x28 and k=5."""

    def __init__(self, channels: int = 64, kernel: int = 5, pool: int = 2, nonlinearity: str = "relu",
                 pooling: str = "max", seed: int = 0):
        self.channels, self.kernel, self.pool, self.seed = channels, kernel, pool, seed
        self.nonlinearity, self.pooling = nonlinearity, pooling

    def fit(self, X):
        c_in = X.shape[1]
        rng = np.random.default_rng(self.seed)
        fan_in = c_in * self.kernel**2
        self.filters = (rng.standard_normal((self.channels, c_in, self.kernel, self.kernel))
                        * np.sqrt(2.0 / fan_in)).astype(np.float32)
        self.filters = on_device_of(X, self.filters)
        self.out_dim = int(np.prod(self(X[:1]).shape[1:]))
        return self

    def __call__(self, X):
        h = _nonlinearity(_conv(X.astype(np.float32, copy=False), self.filters, 0), self.nonlinearity)
        h = _pool(h, self.pool, self.pooling)
        return h.reshape(len(h), -1)


def pca_filters(maps: np.ndarray, kernel: int, count: int, n_patches: int = 300_000, seed: int = 0) -> np.ndarray:
    """The top ``count`` principal components of mean-removed kernel×kernel patches, as (count, 1, k, k) filters.

    Patches are taken from every channel of ``maps`` (N, C, H, W) separately, as PCANet does."""
    if count > kernel * kernel:
        raise ValueError(f"pca_filters: at most kernel² = {kernel * kernel} filters of size {kernel}, asked {count}")
    rng = np.random.default_rng(seed)
    planes = maps.reshape(-1, maps.shape[2], maps.shape[3])
    windows = np.lib.stride_tricks.sliding_window_view(planes, (kernel, kernel), axis=(1, 2))
    n_total = windows.shape[0] * windows.shape[1] * windows.shape[2]
    pick = rng.choice(n_total, size=min(n_patches, n_total), replace=False)
    patches = windows.reshape(n_total, kernel * kernel)[pick].astype(np.float64)
    patches -= patches.mean(axis=1, keepdims=True)
    _, vectors = np.linalg.eigh(patches.T @ patches)
    return np.ascontiguousarray(vectors[:, ::-1][:, :count].T).reshape(count, 1, kernel, kernel).astype(np.float32)


class PCAConv(FeatureMap):
    """PCANet-style filters learned from image patches without labels, stage after stage.

    Stage s has ``stages[s]`` filters of size kernel×kernel ('same' padding), learned by PCA on
    patches of the previous stage's maps and applied to every map separately (so stages
    [8, 8] give 64 maps). The last stage's maps go through the nonlinearity (|·| by default)
    and ``pool``×``pool`` pooling (average by default).
    """

    def __init__(self, stages=(8, 8), kernel: int = 7, pool: int = 3, nonlinearity: str = "abs",
                 pooling: str = "avg", n_images: int = 4000, n_patches: int = 300_000, seed: int = 0):
        if not stages or min(stages) <= 0:
            raise ValueError(f"PCAConv: stages must be positive filter counts, got {stages}")
        self.stages, self.kernel, self.pool = tuple(stages), kernel, pool
        self.nonlinearity, self.pooling = nonlinearity, pooling
        self.n_images, self.n_patches, self.seed = n_images, n_patches, seed

    def fit(self, X):
        rng = np.random.default_rng(self.seed)
        pick = rng.choice(len(X), size=min(self.n_images, len(X)), replace=False)
        sample = to_host(X[on_device_of(X, pick)]).astype(np.float32)  # filters are learned on the host
        self.filters = []
        maps = sample
        for s, count in enumerate(self.stages):
            filt = pca_filters(maps, self.kernel, count, self.n_patches, self.seed + s)
            self.filters.append(filt)
            if s + 1 < len(self.stages):
                maps = np.concatenate([self._stage(maps[i:i + 500], filt) for i in range(0, len(maps), 500)])
        self.filters = [on_device_of(X, f) for f in self.filters]
        self.out_dim = int(np.prod(self(X[:1]).shape[1:]))
        return self

    def _stage(self, maps, filt):
        """Apply ``filt`` to every map of (n, c, h, w) separately -> (n, c·L, h, w) (used while fitting)."""
        n, c, h, w = maps.shape
        out = _conv(maps.reshape(n * c, 1, h, w), filt, self.kernel // 2)
        return out.reshape(n, c * filt.shape[0], out.shape[2], out.shape[3])

    def __call__(self, X):
        """Features of a chunk, kept batch-last in memory (the layout ember's conv ops produce):
        maps live as (L_last, H, W, L_prev·…·n), so each stage is one convolution over a
        "batch" of every earlier map of every image, with no reshuffle between stages."""
        n = len(X)
        xp = backend.array_module(X)
        x = xp.ascontiguousarray(X, dtype=np.float32)
        maps_bl = None  # (L, H, W, batch) batch-last maps of the last stage
        for s, filt in enumerate(self.filters):
            if s == 0:
                out = _conv(x, filt, self.kernel // 2)  # (n, L, H, W) view of (L, H, W, n) memory
            else:
                L, h, w, b = maps_bl.shape
                planes = xp.ascontiguousarray(xp.moveaxis(maps_bl, 0, 2)).reshape(1, h, w, L * b)
                out = _conv(planes.transpose(3, 0, 1, 2), filt, self.kernel // 2)  # batch index = l·b + i
            maps_bl = out.transpose(1, 2, 3, 0)  # (L, H, W, batch), contiguous
        maps_bl = _nonlinearity(xp.ascontiguousarray(maps_bl), self.nonlinearity)
        pooled = _pool_batch_last(maps_bl, self.pool, self.pooling)  # (L, Hp, Wp, batch)
        L, hp, wp, _ = pooled.shape
        # the batch axis holds (L_{S-1}, ..., L_1, n), outermost stage first: reorder every image's
        # features as (L_1, ..., L_S, y, x)
        counts = [f.shape[0] for f in self.filters]
        per_image = pooled.reshape((L, hp, wp) + tuple(reversed(counts[:-1])) + (n,))
        order = (per_image.ndim - 1,) + tuple(range(per_image.ndim - 2, 2, -1)) + (0, 1, 2)
        return xp.ascontiguousarray(per_image.transpose(order)).reshape(n, -1)


def _pool_batch_last(maps: np.ndarray, size: int, kind: str) -> np.ndarray:
    """Non-overlapping size×size pooling of (C, H, W, B) maps, by strided slices (no short-axis reductions)."""
    if size <= 1:
        return maps
    c, h, w, b = maps.shape
    hp, wp = h // size, w // size
    if hp == 0 or wp == 0:
        raise ValueError(f"pooling of size {size} is larger than the {h}x{w} feature maps: the output would be empty")
    out = None
    for i in range(size):
        for j in range(size):
            view = maps[:, i : hp * size : size, j : wp * size : size]
            if out is None:
                out = view.copy()
            elif kind == "max":
                backend.array_module(out).maximum(out, view, out=out)
            else:
                out += view
    if kind != "max":
        out *= 1.0 / (size * size)
    return out


class Standardize(FeatureMap):
    """Wraps a feature map and scales each feature to zero mean and unit variance (statistics from fit)."""

    def __init__(self, inner: FeatureMap, n_fit: int = 10_000):
        self.inner, self.n_fit = inner, n_fit

    def fit(self, X):
        self.inner.fit(X)
        h = self.inner.transform(X[: self.n_fit])
        self.mean = h.mean(axis=0)
        self.scale = (1.0 / (h.std(axis=0) + 1e-6)).astype(np.float32)
        self.out_dim = self.inner.out_dim
        return self

    def __call__(self, X):
        h = self.inner(X)
        h -= self.mean
        h *= self.scale
        return h


class Chain(FeatureMap):
    """Feature maps applied one after another (e.g. PCA conv features, then a random ReLU layer)."""

    def __init__(self, *maps: FeatureMap):
        self.maps = maps

    def fit(self, X):
        sample = X
        for m in self.maps:
            m.fit(sample)
            sample = m.transform(sample[:10_000])
        self.out_dim = self.maps[-1].out_dim
        return self

    def __call__(self, X):
        for m in self.maps:
            X = m(X)
        return X


def shifted_views(images: np.ndarray, directions: int = 4):
    """The images, then copies shifted by one pixel in 4 (or 8) directions, zero-filled at the border."""
    if directions not in (0, 4, 8):
        raise ValueError(f"shifted_views: directions must be 0, 4 or 8, got {directions}")
    yield images
    offsets = [(0, 1), (0, -1), (1, 0), (-1, 0)]
    if directions == 8:
        offsets += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    xp = backend.array_module(images)
    for dy, dx in offsets[:directions]:
        out = xp.zeros_like(images)
        h, w = images.shape[-2:]
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[..., yd, xd] = images[..., ys, xs]
        yield out
