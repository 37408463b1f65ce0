"""The registry, the runner and the ``ember elm`` command."""

from __future__ import annotations

import json

import numpy as np

from ember.cli.main import main
from ember.elm import experiments

REQUIRED = ["dense4096", "rff4096", "conv64", "conv64-ens5", "conv128-aug5-ens10", "pca-conv", "hebbian2048",
            "delta2048", "deep-elm4096"]


def test_registry_has_the_required_experiments():
    assert set(REQUIRED) <= set(experiments.EXPERIMENTS)
    assert experiments.get("conv128-aug5-ens10").slow
    assert "cifar10" in experiments.get("cifar-conv64-ens5").datasets


def test_runner_reports_accuracies_time_memory_and_activations(toy_images, monkeypatch):
    X, y, Xt, yt = toy_images
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny", experiments.Experiment(
        "tiny", "a tiny ELM", lambda s: experiments.ELMClassifier(experiments.RandomProjection(100, "relu", s))))
    result = experiments.run("tiny", "mnist", seed=0, data=(X, y, Xt, yt))
    assert result["test_accuracy"] > 0.7 and result["train_accuracy"] >= result["test_accuracy"] - 0.1
    assert result["seconds"] >= 0 and (result["peak_memory_bytes"] is None or result["peak_memory_bytes"] > 0)
    assert [r["layer"] for r in result["activations"]] == ["features", "readout"]


def test_cli_list_and_errors(capsys):
    assert main(["elm", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED)
    assert main(["elm", "run", "no-such-experiment"]) == 2
    assert main(["elm", "run", "cifar-conv64-ens5", "--dataset", "mnist"]) == 2


def test_cli_run_prints_a_json_line(toy_images, monkeypatch, capsys):
    X, y, Xt, yt = toy_images
    monkeypatch.setattr(experiments, "load_images", lambda *a, **k: (X, y, Xt, yt))
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny", experiments.Experiment(
        "tiny", "a tiny ELM", lambda s: experiments.ELMClassifier(experiments.RandomProjection(64, "relu", s))))
    assert main(["elm", "run", "tiny", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["experiment"] == "tiny" and 0 <= line["test_accuracy"] <= 1 and np.isfinite(line["seconds"])
