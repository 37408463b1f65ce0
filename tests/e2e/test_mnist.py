"""End to end on the real datasets (skipped unless EMBER_DATA points at them): short training budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ember
from ember.data import DataLoader, image_classification
from ember.models import build
from ember.train import evaluate, fit

pytestmark = pytest.mark.slow


def _real(name, root):
    """(train, test) of a real dataset, or a skip that says how to provide it."""
    if root is None or not (root / name / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real {name} not found: set EMBER_DATA to a folder with {name}/ (e.g. ../shared/data)")
    train, stats = image_classification(name, "train", root, download=False)
    test, _ = image_classification(name, "test", root, download=False, stats=stats)
    return train, test


@pytest.fixture(scope="module")
def mnist(ember_data):
    return _real("mnist", ember_data)


def _one_epoch(kind, train, test, batch_size, seed=0):
    ember.manual_seed(seed)
    model = build(kind)
    opt = ember.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, opt, DataLoader(train, batch_size=batch_size, shuffle=True, seed=seed),
                  DataLoader(test, batch_size=1000), epochs=1, progress=False)
    return model, history[-1]


def test_one_mlp_epoch_reaches_95_percent(mnist):
    model, stats = _one_epoch("mlp", *mnist, batch_size=128)
    assert stats.test_accuracy >= 0.95, stats
    assert stats.loss < 0.4


def test_one_lenet_epoch_reaches_97_percent(mnist):
    model, stats = _one_epoch("lenet", *mnist, batch_size=64)
    assert stats.test_accuracy >= 0.97, stats


def test_training_reduces_test_loss_from_chance(mnist):
    train, test = mnist
    ember.manual_seed(1)
    model = build("mlp")
    loss0, acc0 = evaluate(model, DataLoader(test, batch_size=1000))
    assert loss0 == pytest.approx(np.log(10), abs=0.3) and acc0 < 0.3  # an untrained net is at chance
    small = ember.data.TensorDataset(*(a[:6000] for a in train.arrays))
    opt = ember.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit(model, opt, DataLoader(small, batch_size=64, shuffle=True, seed=1), epochs=1, progress=False)
    loss1, acc1 = evaluate(model, DataLoader(test, batch_size=1000))
    assert loss1 < 0.5 * loss0 and acc1 > 0.85


def test_cli_train_save_eval_on_real_mnist(mnist, ember_data, tmp_path, capsys):
    from ember.cli.main import main

    ckpt = tmp_path / "mlp.safetensors"
    rc = main(["train", "mlp", "--epochs", "1", "--no-progress", "--no-download", "--data-dir", str(ember_data),
               "--save", str(ckpt)])
    out = capsys.readouterr().out
    assert rc == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["test_accuracy"] >= 0.95 and ckpt.exists()
    rc = main(["eval", str(ckpt), "--no-download", "--data-dir", str(ember_data)])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and result["test_accuracy"] == summary["test_accuracy"]


def test_fashion_mnist_one_mlp_epoch(ember_data):
    _, stats = _one_epoch("mlp", *_real("fashion-mnist", ember_data), batch_size=128)
    assert stats.test_accuracy >= 0.82, stats


def test_one_kan_epoch_on_mnist(ember_data):
    from ember.models import KAN

    root = ember_data
    if root is None or not (root / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("real mnist not found: set EMBER_DATA to a folder with mnist/ (e.g. ../shared/data)")
    stats = (np.array([0.5], np.float32), np.array([0.5], np.float32))  # pixels to [-1, 1], the grid's range
    train, _ = image_classification("mnist", "train", root, download=False, stats=stats)
    test, _ = image_classification("mnist", "test", root, download=False, stats=stats)
    ember.manual_seed(0)
    model = KAN(widths=(784, 64, 10))
    opt = ember.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    history = fit(model, opt, DataLoader(train, batch_size=64, shuffle=True, seed=0),
                  DataLoader(test, batch_size=1000), epochs=1, progress=False, grad_clip=1.0)
    assert history[-1].test_accuracy >= 0.93, history[-1]


def test_an_elm_learns_mnist_without_gradients(mnist):
    from ember.elm.features import RandomProjection
    from ember.elm.learners import ELMClassifier

    train, test = mnist
    X, y = train.arrays
    Xt, yt = test.arrays
    elm = ELMClassifier(RandomProjection(2048, "relu", seed=0), lam=1e3).fit(X, y)
    assert elm.score(Xt, yt) >= 0.95
