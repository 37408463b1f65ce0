"""The capstone example runs end to end on a short budget, and what it writes loads back in ember."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ember.cli.main import main as ember_main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "end_to_end.py"


def load_example():
    spec = importlib.util.spec_from_file_location("end_to_end", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_end_to_end_example_trains_profiles_prunes_quantises_and_exports(tmp_path, capsys):
    from ember.data.registry import DatasetError, locate

    try:
        locate("mnist", "train-images-idx3-ubyte", download=False)
    except DatasetError as exc:
        pytest.skip(f"MNIST is missing (set EMBER_DATA): {exc}")
    out = tmp_path / "run"
    assert load_example().main(["--epochs", "1", "--train-images", "3000", "--test-images", "1000",
                                "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    stages = {r["stage"]: r for r in report["stages"]}
    trained, final = report["stages"][0], report["stages"][-1]
    assert trained["accuracy"] > 0.7
    assert final["macs_per_image"] <= 0.5 * trained["macs_per_image"]  # half the multiply-accumulates
    assert final["weight_bytes"] * 4 < trained["weight_bytes"]  # pruned and int8: far smaller
    assert stages["pruned + int8"]["accuracy"] > stages["pruned + fine-tuned"]["accuracy"] - 0.02
    assert report["profile"]["step_peak_memory_bytes"] > 0
    if report["onnx"] is not None:
        assert report["onnx"]["max_abs_diff"] < 1e-4
    capsys.readouterr()
    for name in ("lenet.safetensors", "lenet_pruned.safetensors", "lenet_pruned_int8.safetensors"):
        assert ember_main(["eval", str(out / name), "--dataset", "mnist"]) == 0
        assert "accuracy" in capsys.readouterr().out
