"""The training loops on a second device (the GPU-free test double ``cpu:other``): state is saved from host
copies, a resumed run's optimizer state follows the parameters onto the device, evaluation matches the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from ember import backend
from ember.data.text import TextCorpus
from ember.io.safetensors_io import read_safetensors
from ember.testing import device_double
from ember.text import CharTokenizer
from ember.train import evaluate_lm
from ember.train.lm import STATE_FILE, LMTrainConfig, LMTrainer

OTHER = device_double.DEVICE


@pytest.fixture
def corpus():
    text = " ".join(np.random.default_rng(0).choice(["ab", "cd", "ef", "gh"], 1500))
    tok = CharTokenizer.train(text)
    ids = np.asarray(tok.encode(text), dtype=np.int64)
    cut = int(0.9 * len(ids))
    return TextCorpus("words", tok, ids[:cut], ids[cut:], len(text))


def config(out) -> LMTrainConfig:
    return LMTrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=6, eval_interval=3,
                         eval_iters=2, warmup_iters=1, out=str(out))


def test_state_saved_from_the_device_is_host_arrays_and_resumes_onto_the_device(corpus, tmp_path):
    trainer = LMTrainer(config(tmp_path / "run"), corpus, device="cpu:other")
    assert all(p.device == OTHER for p in trainer.model.parameters())
    trainer.run(progress=False, until=3)
    arrays, _ = read_safetensors(tmp_path / "run" / STATE_FILE)
    assert arrays and all(type(a) is np.ndarray for a in arrays.values())
    resumed = LMTrainer.resume(tmp_path / "run", corpus=corpus, device="cpu:other")
    moments = [v for st in resumed.optimizer.state.values() for v in st.values() if hasattr(v, "shape")]
    assert moments and all(backend.device_of(m) == OTHER for m in moments)
    resumed.run(progress=False)  # an optimizer step mixing host moments with device parameters would raise
    assert resumed.iter == 6


def test_lm_evaluation_on_the_device_matches_the_cpu(corpus):
    cpu = LMTrainer(LMTrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), corpus)
    other = LMTrainer(LMTrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), corpus, device="cpu:other")
    a = evaluate_lm(cpu.model, corpus.tokenizer, corpus.val, batch_size=8)
    b = evaluate_lm(other.model, corpus.tokenizer, corpus.val, batch_size=8)
    assert a.tokens == b.tokens and type(b.loss) is float
    assert b.loss == pytest.approx(a.loss, rel=1e-5)
    assert other.estimate_loss()["val"] == pytest.approx(cpu.estimate_loss()["val"], rel=1e-5)
