"""Feature maps: shapes, scales, the RFF kernel, PCA filters, shifted views."""

from __future__ import annotations

import numpy as np
import pytest

from ember.elm.features import (
    Chain,
    PCAConv,
    RandomConv,
    RandomFourier,
    RandomProjection,
    Standardize,
    pca_filters,
    shifted_views,
)


def test_random_projection_is_kaiming_and_relu():
    X = np.random.default_rng(0).standard_normal((500, 1, 8, 8)).astype(np.float32)
    f = RandomProjection(2000, "relu", seed=1).fit(X)
    h = f(X)
    assert h.shape == (500, 2000) and h.dtype == np.float32 and h.min() >= 0
    assert f.W.std() == pytest.approx(np.sqrt(2 / 64), rel=0.05)
    assert RandomProjection(10, "tanh").fit(X)(X).max() <= 1
    with pytest.raises(ValueError, match="activation"):
        RandomProjection(10, "gelu")


def test_random_fourier_features_approximate_the_gaussian_kernel():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 5)).astype(np.float32)
    gamma = 0.3
    z = RandomFourier(20000, gamma=gamma, seed=3).fit(X)(X)
    exact = np.exp(-gamma * ((X[:, None] - X[None]) ** 2).sum(-1))
    np.testing.assert_allclose(z @ z.T, exact, atol=0.04)
    with pytest.raises(ValueError, match="gamma"):
        RandomFourier(10, gamma=-1.0)


def test_random_conv_gives_channels_times_12x12_for_28x28_images():
    X = np.random.default_rng(4).standard_normal((6, 1, 28, 28)).astype(np.float32)
    f = RandomConv(16, 5, 2, seed=0).fit(X)
    assert f.out_dim == 16 * 12 * 12 and f(X).shape == (6, 16 * 12 * 12)
    assert f(X).min() >= 0  # ReLU before pooling


def test_pca_filters_are_the_orthonormal_principal_components_of_patches():
    X = np.random.default_rng(5).standard_normal((50, 1, 12, 12)).astype(np.float32)
    X[:, :, :, ::2] *= 3  # an anisotropy for PCA to find
    filt = pca_filters(X, 3, 9, n_patches=10_000)
    F = filt.reshape(9, 9).astype(np.float64)
    np.testing.assert_allclose(F @ F.T, np.eye(9), atol=1e-5)
    patches = np.lib.stride_tricks.sliding_window_view(X[:, 0], (3, 3), axis=(1, 2)).reshape(-1, 9).astype(np.float64)
    patches -= patches.mean(axis=1, keepdims=True)
    variances = ((patches @ F.T) ** 2).mean(axis=0)
    assert np.all(np.diff(variances) <= 1e-6 * variances[0])  # sorted by explained variance
    with pytest.raises(ValueError, match="at most kernel"):
        pca_filters(X, 3, 10)


def test_pca_conv_two_stages_match_a_plain_implementation():
    from ember.elm.features import _conv, _nonlinearity, _pool

    X = np.random.default_rng(6).standard_normal((7, 1, 14, 14)).astype(np.float32)
    f = PCAConv((3, 4), 5, pool=2, n_images=7, n_patches=2000).fit(X)
    assert f.out_dim == 12 * 7 * 7
    # reference: stage 1, then stage 2 on every map separately, |.|, 2x2 average pooling
    s1 = _conv(X, f.filters[0], 2)
    s2 = _conv(s1.reshape(21, 1, 14, 14), f.filters[1], 2).reshape(7, 3, 4, 14, 14)
    ref = _pool(_nonlinearity(s2.reshape(7, 12, 14, 14).copy(), "abs"), 2, "avg")  # (n, l1·4 + l2, 7, 7)
    ours = f(X).reshape(7, 3, 4, 7, 7)  # feature order: image, l1, l2, y, x
    np.testing.assert_allclose(ours, ref.reshape(7, 3, 4, 7, 7), rtol=1e-5, atol=1e-5)


def test_shifted_views_move_pixels_by_one():
    img = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    views = list(shifted_views(img, 4))
    assert len(views) == 5 and np.array_equal(views[0], img)
    right = views[1][0, 0]
    assert np.array_equal(right[:, 1:], img[0, 0, :, :-1]) and np.all(right[:, 0] == 0)
    assert len(list(shifted_views(img, 8))) == 9
    with pytest.raises(ValueError, match="directions"):
        list(shifted_views(img, 3))


def test_standardize_and_chain():
    X = np.random.default_rng(7).standard_normal((300, 1, 6, 6)).astype(np.float32) * 4 + 2
    f = Standardize(RandomProjection(50, "relu", 0)).fit(X)
    h = f(X)
    np.testing.assert_allclose(h.mean(axis=0), 0, atol=1e-4)
    assert np.all((h.std(axis=0) > 0.99) | (h.std(axis=0) < 1e-3))
    chain = Chain(Standardize(RandomConv(4, 3, 2, seed=0)), RandomProjection(30, "relu", 1)).fit(X)
    assert chain(X).shape == (300, 30) and chain.out_dim == 30


def test_pooling_larger_than_the_maps_is_an_error_not_empty_features():
    from ember.elm.features import _pool_batch_last

    maps = np.zeros((2, 4, 4, 3), np.float32)
    assert _pool_batch_last(maps, 4, "avg").shape == (2, 1, 1, 3)
    with pytest.raises(ValueError, match="pooling of size 5 is larger than the 4x4 feature maps"):
        _pool_batch_last(maps, 5, "max")
