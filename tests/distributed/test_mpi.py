"""Two real processes under ``mpirun -np 2`` on 127.0.0.1: collectives, shards, a data-parallel step against one
process with the doubled batch, the Gram matrix summed over ranks against one process, and jobs that fail."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from mpi_jobs import explain, needs_mpi, run_mpi

import ember
from ember.elm.features import RandomProjection
from ember.elm.learners import ELMClassifier, Ensemble
from ember.models import GPT, MLP, GPTConfig, LeNet5
from ember.nn import functional as F

pytestmark = needs_mpi


@pytest.fixture(scope="module")
def basics(tmp_path_factory):
    out = tmp_path_factory.mktemp("basics")
    proc = run_mpi(["basics.py", str(out)])
    assert proc.returncode == 0, explain(proc)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_world_from_the_launcher(basics):
    assert [(g["rank"], g["size"], g["local_rank"], g["local_size"]) for g in basics] == [(0, 2, 0, 2), (1, 2, 1, 2)]


def test_collectives_give_every_rank_the_combined_arrays(basics):
    for got in basics:
        base = np.arange(6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(got["sum"], base * 1 + base * 2)
        assert got["mean"] == [1.5] * 4
        assert got["max"] == [1, 0] and got["min"] == [0, -1]
        assert got["strided"] == [[3.0, 3.0]] * 3
        assert got["broadcast_from_last"] == (np.arange(5) * 11).tolist()
        assert got["all_gather"] == [[0, 0], [1, 10]]
        assert got["objects"] == [{"rank": 0, "word": ""}, {"rank": 1, "word": "abc"}]
        assert got["object_from_0"] == {"from": 0}
        assert got["big_sum_min_max"] == [2.0, 2.0]
    assert basics[0]["reduce"] == [3.0] * 3  # the root holds the sum
    assert basics[1]["reduce"] == [2.0] * 3  # the other rank's buffer only sent


@pytest.fixture(scope="module")
def shared_buffers(tmp_path_factory):
    out = tmp_path_factory.mktemp("shared")
    proc = run_mpi(["shared_buffers.py", str(out)])
    assert proc.returncode == 0, explain(proc)
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


def test_buffers_in_shared_memory_reduce_as_mpi_does_round_after_round(shared_buffers):
    combine = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}
    rounds = [key for key in shared_buffers[0] if key.split("-")[0] in ("float32", "float64", "int64")]
    assert len(rounds) == 3 * 4 * 6  # dtypes x sizes x rounds
    for key in rounds:
        dtype, size, i, op = key.split("-")
        size, i = int(size), int(i)
        assert all(bool(got[f"shared-{dtype}-{size}"]) for got in shared_buffers)  # one node: shared memory
        parts = []
        for r in range(2):
            rng = np.random.default_rng([size, i, r])
            parts.append((rng.standard_normal(size) * 100 if dtype != "int64" else
                          rng.integers(-1000, 1000, size)).astype(dtype))
        want = combine[op](parts[0], parts[1])
        if op == "mean":
            want /= 2
        for r, got in enumerate(shared_buffers):
            np.testing.assert_array_equal(got[key], want, err_msg=f"rank {r}: {key}")
            np.testing.assert_array_equal(got[key], got[f"mpi-{key}"], err_msg=f"rank {r}: {key} against MPI's")


def test_a_shared_buffer_behaves_as_any_array_to_the_other_collectives(shared_buffers):
    for got in shared_buffers:
        np.testing.assert_array_equal(got["tensor"], [3.0] * 5)
        assert bool(got["tensor_version_bumped"])
        np.testing.assert_array_equal(got["part"][:10], 3.0)  # a slice goes through MPI
        assert got["beside_mpi"].tolist() == [1.0] * 3
        np.testing.assert_array_equal(got["beside_shared"], 3.0)
        np.testing.assert_array_equal(got["crossed"], 3.0)  # moved on by rank 0's barrier: no deadlock
    np.testing.assert_array_equal(shared_buffers[0]["part"][10:], 1.0)  # the rest is each rank's own
    np.testing.assert_array_equal(shared_buffers[1]["part"][10:], 2.0)
    for got in shared_buffers:
        assert str(got["disagree"]) == "all_reduce_buffer: rank 1 asked for 11 elements of <f4, rank 0 for 10 of <f4"
        assert str(got["env_disagree"]) == ("all_reduce_buffer: EMBER_DIST_SHARED_MEMORY differs between rank 1 and "
                                            "rank 0; launch every rank with the same environment")


def test_loader_shards_are_disjoint_and_cover_each_epoch(basics):
    assert basics[0]["batches_per_epoch"] == basics[1]["batches_per_epoch"] == 7  # ceil(52 / 8)
    for epoch in range(2):
        shards = [[i for b in got["epochs"][epoch] for i in b] for got in basics]
        assert len(shards[0]) == len(shards[1]) == 52  # ceil(103 / 2): one index repeated as padding
        assert set(shards[0]) | set(shards[1]) == set(range(103))
        assert len(set(shards[0]) & set(shards[1])) <= 1
    assert basics[0]["epochs"][0] != basics[0]["epochs"][1]  # a new permutation each epoch


def _reference_step(case: str):
    """The same step in this process: rank 0's initial weights, the whole batch of 2B rows."""
    rng = np.random.default_rng(0)
    ember.manual_seed(100)
    if case.startswith("mlp"):
        dtype = "float64" if "64" in case else "float32"
        x, y = rng.standard_normal((8, 12)).astype(dtype), rng.integers(0, 5, 8)
        model = MLP(sizes=(12, 16, 8, 5)).to(dtype=dtype)
        loss = lambda: F.cross_entropy(model(ember.Tensor(x)), ember.Tensor(y))  # noqa: E731
    elif case == "lenet":
        x, y = rng.standard_normal((8, 1, 28, 28)).astype("float32"), rng.integers(0, 10, 8)
        model = LeNet5()
        loss = lambda: F.cross_entropy(model(ember.Tensor(x)), ember.Tensor(y))  # noqa: E731
    else:
        x, y = rng.integers(0, 11, (8, 8)), rng.integers(0, 11, (8, 8))
        model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))
        loss = lambda: model(ember.Tensor(x), ember.Tensor(y))[1]  # noqa: E731
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad()
    loss().backward()
    opt.step()
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module", params=["shared", "mpi"])
def data_parallel(tmp_path_factory, request):
    """The job's outputs, its buckets all-reduced in shared memory (one node: the default) or by MPI."""
    out = tmp_path_factory.mktemp(f"ddp-{request.param}")
    proc = run_mpi(["data_parallel.py", str(out)], EMBER_DIST_SHARED_MEMORY="1" if request.param == "shared" else "0")
    assert proc.returncode == 0, explain(proc)
    return out, request.param


@pytest.mark.parametrize("case, tol", [("mlp32", 1e-6), ("mlp64", 1e-12), ("mlp64-end", 1e-12), ("lenet", 1e-6),
                                       ("gpt", 1e-6)])
def test_a_data_parallel_step_equals_one_process_with_the_doubled_batch(data_parallel, case, tol):
    data_parallel, path = data_parallel
    expected = _reference_step(case.split("-")[0])
    ranks = [dict(np.load(data_parallel / f"{case}-rank{r}.npz")) for r in range(2)]
    paths = {(data_parallel / f"{case}-path-rank{r}.txt").read_text() for r in range(2)}
    assert len(paths) == 1 and set(paths.pop().split()) == {path}  # every bucket went the way asked, on both
    assert ranks[0].keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(ranks[0][name], value, rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_array_equal(ranks[1][name], ranks[0][name], err_msg=f"{name}: the replicas differ")


def test_buffers_follow_rank_0_at_every_training_forward_as_in_pytorch(data_parallel):
    """broadcast_buffers (PyTorch's meaning): at the start of each training forward every rank holds rank 0's
    buffers; each rank then moves them by its own amount (rank r by r + 1). Without it they drift apart."""
    data_parallel = data_parallel[0]
    seen = {b: [np.load(data_parallel / f"buffers-{b}-rank{r}.npy")[:, 0] for r in range(2)] for b in (True, False)}
    # three training forwards see rank 0's counts (0, 1, 2); the no-grad and eval forwards see each rank's own
    np.testing.assert_array_equal(seen[True][0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(seen[True][1], [0, 1, 2, 4, 6])
    np.testing.assert_array_equal(seen[False][0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(seen[False][1], [0, 2, 4, 6, 8])


def test_a_nan_loss_on_one_rank_drops_that_step_on_every_rank(data_parallel):
    """train_epoch with the agreeing guard: the loss's agreement finishes with the gradients' all-reduce, and the
    step with a NaN on rank 1 is dropped on both: the replicas equal one process that skipped that batch."""
    data_parallel = data_parallel[0]
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 8, 12)), rng.integers(0, 5, (4, 8))
    ember.manual_seed(100)
    model = MLP(sizes=(12, 16, 8, 5)).to(dtype="float64")
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for k in (0, 1, 3):
        opt.zero_grad()
        F.cross_entropy(model(ember.Tensor(x[k])), ember.Tensor(y[k])).backward()
        opt.step()
    ranks = [dict(np.load(data_parallel / f"skip-rank{r}.npz")) for r in range(2)]
    assert [int(r.pop("skipped")) for r in ranks] == [1, 1]
    assert all(np.isfinite(r.pop("loss")) for r in ranks)
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(ranks[0][name], value.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(ranks[1][name], ranks[0][name], err_msg=f"{name}: the replicas differ")


def test_a_nan_loss_on_one_rank_drops_that_gpt_step_on_every_rank(data_parallel):
    data_parallel = data_parallel[0]
    ranks = [dict(np.load(data_parallel / f"lm-skip-rank{r}.npz")) for r in range(2)]
    assert [(int(r.pop("skipped")), int(r.pop("iters"))) for r in ranks] == [(1, 5), (1, 5)]
    for name, value in ranks[0].items():
        assert np.isfinite(value).all(), name
        np.testing.assert_array_equal(ranks[1][name], value, err_msg=f"{name}: the replicas differ")


def test_the_gram_matrix_summed_over_ranks_gives_the_single_process_solution(tmp_path):
    proc = run_mpi(["forward_only.py", str(tmp_path)])
    assert proc.returncode == 0, explain(proc)
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1100, 1, 6, 6)).astype(np.float32)
    y = (X.reshape(1100, -1)[:, :3].sum(axis=1) > 0).astype(np.int64) + 2 * (X[:, 0, 0, 0] > 1)

    def elm(seed, lam="gcv", views=0):
        return ELMClassifier(RandomProjection(48, "relu", seed), lam=lam, chunk=128, shift_views=views)

    on_root, everywhere = elm(1).fit(X, y), elm(2, lam=0.5, views=4).fit(X, y)
    ensemble = Ensemble([elm(10 + m) for m in range(3)]).fit(X, y)
    for got in ranks:
        assert float(got["root_lam"]) == pytest.approx(on_root.readout.lam, rel=1e-9)
        np.testing.assert_allclose(got["root_W"], on_root.readout.W, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(got["root_bias"], on_root.readout.bias, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(got["every_W"], everywhere.readout.W, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(got["every_bias"], everywhere.readout.bias, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(got["spread_scores"], ensemble.decision_function(X[:50]), rtol=1e-10,
                                   atol=1e-12)
        assert float(got["root_accuracy"]) == on_root.score(X, y)


@pytest.mark.parametrize("mode", ["raise", "shared-raise"])
def test_a_rank_that_raises_ends_the_job_with_its_message_on_every_rank(mode):
    started = time.monotonic()
    proc = run_mpi(["failing.py", mode, "30"], timeout=60)
    seconds = time.monotonic() - started
    assert proc.returncode != 0
    assert "rank 1 of 2" in proc.stderr and "failed (RuntimeError: rank one broke on purpose)" in proc.stderr
    assert "rank 0 of 2" in proc.stderr and \
        "rank 1 failed (RuntimeError: rank one broke on purpose) while waiting in all_reduce" in proc.stderr
    assert "reached the end" not in proc.stdout
    assert seconds < 30  # ended by the notice, not by the timeout


@pytest.mark.parametrize("mode", ["hang", "shared-hang"])
def test_a_rank_that_never_joins_ends_the_job_after_the_timeout(mode):
    started = time.monotonic()
    proc = run_mpi(["failing.py", mode, "3"], timeout=60)
    seconds = time.monotonic() - started
    assert proc.returncode != 0
    assert "rank 0 of 2" in proc.stderr and "all_reduce (3 float64) did not complete within 3 s" in proc.stderr
    assert seconds < 25  # 3 s, the acknowledgement wait, the start-up: far below rank 1's 30 s sleep


def test_a_rank_that_cannot_map_shared_memory_ends_the_job_naming_the_way_out():
    proc = run_mpi(["failing.py", "shared-no-room", "3"], timeout=60)
    assert proc.returncode != 0
    assert "rank 1 of 2" in proc.stderr and "could not map 24 bytes of memory shared by this node's ranks " \
        "(OSError: [Errno 28] No space left on device)" in proc.stderr, explain(proc)
    assert "EMBER_DIST_SHARED_MEMORY=0" in proc.stderr
    assert "reached the end" not in proc.stdout


def test_models_of_other_shapes_are_refused_at_start_up_on_every_rank():
    proc = run_mpi(["failing.py", "mismatch", "30"], timeout=60)
    assert proc.returncode != 0
    message = "the model on rank 1 differs from rank 0's: parameter net.1.weight of shape (24, 8)"
    assert proc.stderr.count(message) == 2, explain(proc)  # raised together on both ranks: no abort needed
    assert "reached the end" not in proc.stdout
