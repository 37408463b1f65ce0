import numpy as np
import pytest


@pytest.fixture(scope="session")
def toy_images():
    """1,200 train / 400 test 'digits': 10 class templates (smooth blobs) plus noise, 1x16x16, standardised."""
    yy, xx = np.mgrid[0:16, 0:16]
    templates = []
    for c in range(10):
        cy, cx = 3 + (c % 5) * 2.5, 4 + (c // 5) * 7
        templates.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0) - np.exp(-((yy - 15 + cy) ** 2) / 8.0) * 0.5)
    templates = np.stack(templates)

    def make(n, seed):
        r = np.random.default_rng(seed)
        y = r.integers(0, 10, n)
        X = templates[y] + 0.35 * r.standard_normal((n, 16, 16))
        return X[:, None].astype(np.float32), y

    X, y = make(1200, 1)
    Xt, yt = make(400, 2)
    mean, std = X.mean(), X.std()
    return (X - mean) / std, y, (Xt - mean) / std, yt
