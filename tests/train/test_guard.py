"""Non-finite losses: the loops stop with TrainingDiverged naming where, or skip the bad step without updating."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember.data import DataLoader, TensorDataset
from ember.models import MLP, MLPConfig
from ember.train import NonFiniteGuard, TrainingDiverged, fit


def poisoned_loss(bad_calls: set[int]):
    """Cross-entropy, except NaN on the given (1-based) calls."""
    calls = [0]

    def loss_fn(logits, y):
        calls[0] += 1
        loss = F.cross_entropy(logits, y)
        return loss * float("nan") if calls[0] in bad_calls else loss

    return loss_fn


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    ember.manual_seed(0)
    model = MLP(MLPConfig(sizes=(6, 8, 3)))
    return model, DataLoader(TensorDataset(x, y), batch_size=10)


def test_stop_names_the_epoch_and_batch_and_leaves_the_last_good_weights(setup):
    model, loader = setup
    opt = ember.optim.SGD(model.parameters(), lr=0.1)
    snapshots = []
    with pytest.raises(TrainingDiverged, match=r"epoch 2, batch 3: the loss is nan"):
        fit(model, opt, loader, epochs=3, loss_fn=poisoned_loss({7}), progress=False,
            on_epoch=lambda s: snapshots.append({k: v.numpy().copy() for k, v in model.state_dict().items()}))
    for value in model.state_dict().values():
        assert np.isfinite(value.numpy()).all()


def test_skip_drops_exactly_the_bad_batches(setup):
    model, loader = setup
    reference = MLP(MLPConfig(sizes=(6, 8, 3)))
    reference.load_state_dict(model.state_dict())
    history = fit(model, ember.optim.SGD(model.parameters(), lr=0.1), loader, epochs=2,
                  loss_fn=poisoned_loss({2, 6}), progress=False, on_nonfinite="skip")
    assert [s.skipped_batches for s in history] == [1, 1]
    # the same run with those two batches left out by hand
    opt = ember.optim.SGD(reference.parameters(), lr=0.1)
    batches = list(loader)
    for epoch in range(2):
        for i, (x, y) in enumerate(batches):
            if epoch * len(batches) + i + 1 in (2, 6):
                continue
            opt.zero_grad()
            F.cross_entropy(reference(x), y).backward()
            opt.step()
    for (name, a), (_, b) in zip(model.named_parameters(), reference.named_parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)


def test_skip_still_stops_a_run_that_keeps_failing():
    guard = NonFiniteGuard("skip", max_consecutive=3)
    assert guard.ok(1.0, "step 1") and not guard.ok(float("inf"), "step 2") and not guard.ok(float("nan"), "step 3")
    with pytest.raises(TrainingDiverged, match="non-finite in 3 steps in a row"):
        guard.ok(float("nan"), "step 4")
    with pytest.raises(ValueError, match="on_nonfinite"):
        NonFiniteGuard("ignore")


def test_lm_trainer_stops_or_skips(tmp_path):
    from ember.train.lm import LMTrainConfig, LMTrainer

    corpus = tmp_path / "c.txt"
    corpus.write_text(" ".join(np.random.default_rng(0).choice(["ab", "cd", "ef"], 600)))
    tiny = dict(data=str(corpus), tokenizer="char", n_layer=1, n_head=2, n_embd=8, block_size=8, batch_size=2,
                eval_iters=1, eval_interval=100, log_interval=1, max_iters=4, warmup_iters=0)

    def poison(trainer, at_iteration):
        forward = trainer.model.forward

        def maybe_nan(x, y=None):
            logits, loss = forward(x, y)
            if trainer.model.training and trainer.iter + 1 == at_iteration:
                loss = loss * float("nan")
            return logits, loss

        trainer.model.forward = maybe_nan

    stopping = LMTrainer(LMTrainConfig(**tiny))
    poison(stopping, 3)
    with pytest.raises(TrainingDiverged, match="iteration 3: the loss is nan"):
        stopping.run(progress=False)
    assert stopping.iter == 2
    skipping = LMTrainer(LMTrainConfig(**tiny, on_nonfinite="skip", out=str(tmp_path / "run")))
    poison(skipping, 3)
    records = skipping.run(progress=False)
    train = [r for r in records if r["event"] == "train"]
    assert [r["iter"] for r in train] == [1, 2, 3, 4] and train[-1]["skipped_steps"] == 1
    assert train[2]["loss"] == train[1]["loss"]  # iteration 3 applied nothing: the last applied loss is shown
    for p in skipping.model.parameters():
        assert np.isfinite(p.numpy()).all()
