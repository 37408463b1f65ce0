"""``ember export``: checkpoint files and run folders to each format, and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.cli.main import main
from ember.io import save_checkpoint
from ember.models import MLP
from ember.models.gpt import GPT, GPTConfig
from ember.text import CharTokenizer

CHARS = list("abcdefghij klmnopqr\n")


def small_gpt() -> GPT:
    return GPT(GPTConfig(vocab_size=len(CHARS), block_size=16, n_layer=1, n_head=2, n_embd=8, gelu="tanh")).eval()


def test_an_mlp_checkpoint_file_exports_to_onnx_that_onnxruntime_runs_as_ember(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is missing: pip install 'ember[onnx]'")
    model = MLP().eval()
    ckpt = save_checkpoint(tmp_path / "mlp.safetensors", model)
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "mlp.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((3, 784)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "mlp.onnx"))
    got = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model(ember.tensor(x)).numpy(), rtol=0, atol=1e-5)


def test_a_gpt_checkpoint_file_takes_the_tokenizer_beside_it(tmp_path):
    pytest.importorskip("gguf", reason="the gguf package is missing: pip install 'ember[gguf]'")
    ckpt = save_checkpoint(tmp_path / "model.safetensors", small_gpt())
    assert main(["export", str(ckpt), "--format", "gguf", "--out", str(tmp_path / "m.gguf")]) == 1
    CharTokenizer(CHARS).save(tmp_path / "tokenizer.json")
    assert main(["export", str(ckpt), "--format", "gguf", "--out", str(tmp_path / "m.gguf")]) == 0
    assert (tmp_path / "m.gguf").stat().st_size > 0


def test_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "model.safetensors", small_gpt())
    assert main(["export", str(ckpt), "--format", "gguf", "--out", str(tmp_path / "m.gguf")]) == 1
    assert "there is no tokenizer.json beside the checkpoint" in capsys.readouterr().err
    assert main(["export", str(ckpt), "--format", "onnx", "--dtype", "f16", "--out", str(tmp_path / "m.onnx")]) == 1
    assert "--dtype f16 applies to gguf and hf" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "no such checkpoint" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(ckpt), "--format", "tflite", "--out", str(tmp_path / "m")])
    assert exit_info.value.code == 2
