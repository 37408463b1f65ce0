"""DistributedDataParallel in one process, over a simulated world whose other ranks mirror this one: buckets,
when they start during backward, no_sync, unused parameters, the model check, and the autograd walk observers."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ember
from ember import autograd, nn
from ember.distributed import DistributedDataParallel, RanksDisagree, World
from ember.distributed.data_parallel import signature
from ember.models import MLP
from ember.nn import functional as F


class MirrorWorld(World):
    """``size`` ranks that all hold this rank's arrays: a sum is size times the array, a mean the array itself.
    ``events`` records the collectives (and whatever a test appends) in order."""

    def __init__(self, size: int = 2):
        super().__init__(rank=0, size=size)
        self.events: list[tuple] = []

    def _start_allreduce(self, flat, op):
        self.events.append(("all_reduce", flat.size))
        if op in ("sum", "mean"):
            flat *= self.size
        return []

    def _start_bcast(self, flat, root):
        self.events.append(("broadcast", flat.size))
        return []

    def _start_allgather(self, flat, out):
        out[...] = flat
        return []

    def _start_allgatherv(self, data, out, lengths):
        out[...] = np.tile(data, self.size)
        return []


@pytest.fixture(autouse=True)
def no_leftover_observers():
    before = list(autograd.walk_observers)
    yield
    autograd.walk_observers[:] = before


def batch(n=6, features=10, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    return ember.Tensor(x), ember.Tensor(rng.integers(0, classes, n))


def mlp(seed=0):
    ember.manual_seed(seed)
    return MLP(sizes=(10, 16, 8, 4))


def test_training_over_mirrored_ranks_is_training_in_one_process():
    """Every rank computes the same gradient, so their mean is that gradient, bit for bit."""
    alone, wrapped = mlp(), mlp()
    ddp = DistributedDataParallel(wrapped, MirrorWorld())
    opt_alone = ember.optim.Adam(alone.parameters(), lr=1e-2)
    opt_wrapped = ember.optim.Adam(wrapped.parameters(), lr=1e-2)
    for step in range(3):
        x, y = batch(seed=step)
        for net, opt in ((alone, opt_alone), (ddp, opt_wrapped)):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    for (name, a), (_, b) in zip(alone.state_dict().items(), wrapped.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_buckets_hold_every_parameter_once_in_reverse_order_within_the_cap():
    model = mlp()
    cap_mb = 600 / 2**20  # 600 bytes: the 16x10 and 8x16 weights (640 and 512 bytes) each need a bucket
    ddp = DistributedDataParallel(model, MirrorWorld(), bucket_cap_mb=cap_mb)
    params = list(model.parameters())
    in_buckets = [p for bucket in ddp._buckets for p in bucket.params]
    assert [id(p) for p in in_buckets] == [id(p) for p in reversed(params)]
    for bucket in ddp._buckets:
        nbytes = sum(p.data.nbytes for p in bucket.params)
        assert nbytes <= 600 or len(bucket.params) == 1
        assert bucket.buffer.size == bucket.total + len(bucket.params)  # a count slot per parameter
    assert len(ddp._buckets) > 2


def test_buckets_keep_one_dtype_each():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.ones(3, np.float32))
            self.b = nn.Parameter(np.ones(2, np.float64))
            self.c = nn.Parameter(np.ones(4, np.float32))

    ddp = DistributedDataParallel(Mixed(), MirrorWorld())
    assert sorted((str(b.buffer.dtype), b.total) for b in ddp._buckets) == [("float32", 7), ("float64", 2)]


def record_nodes(world: MirrorWorld):
    """A walk observer that appends ("node", i) to the world's events as each node finishes."""

    class Recorder:
        def node_done(self, index, g, grads):
            world.events.append(("node", index))

        def walk_done(self):
            world.events.append(("walk done",))

    def observe(order):
        return Recorder()

    autograd.walk_observers.append(observe)


def test_with_overlap_the_first_buckets_start_while_backward_still_runs():
    world = MirrorWorld()
    ddp = DistributedDataParallel(mlp(), world, bucket_cap_mb=600 / 2**20, overlap=True)
    record_nodes(world)  # after the wrapper's observer: a bucket started at node i shows before ("node", i)
    world.events.clear()
    x, y = batch()
    F.cross_entropy(ddp(x), y).backward()
    kinds = [e[0] for e in world.events]
    last_node = max(i for i, k in enumerate(kinds) if k == "node")
    reduces = [i for i, k in enumerate(kinds) if k == "all_reduce"]
    assert len(reduces) == len(ddp._buckets)
    assert reduces[0] < last_node  # the first bucket went out before the walk's last node


def test_without_overlap_every_bucket_starts_when_backward_ends():
    world = MirrorWorld()
    ddp = DistributedDataParallel(mlp(), world, bucket_cap_mb=600 / 2**20, overlap=False)
    record_nodes(world)
    world.events.clear()
    x, y = batch()
    F.cross_entropy(ddp(x), y).backward()
    kinds = [e[0] for e in world.events]
    last_node = max(i for i, k in enumerate(kinds) if k == "node")
    assert [i for i, k in enumerate(kinds) if k == "all_reduce"] and \
        min(i for i, k in enumerate(kinds) if k == "all_reduce") > last_node


def test_no_sync_accumulates_locally_and_the_next_backward_averages_the_sum():
    world = MirrorWorld()
    model = mlp()
    ddp = DistributedDataParallel(model, world)
    reference = mlp()
    (x1, y1), (x2, y2) = batch(seed=1), batch(seed=2)
    world.events.clear()
    with ddp.no_sync():
        F.cross_entropy(ddp(x1), y1).backward()
    assert world.events == []
    F.cross_entropy(ddp(x2), y2).backward()
    assert len(world.events) == len(ddp._buckets)
    F.cross_entropy(reference(x1), y1).backward()
    F.cross_entropy(reference(x2), y2).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_a_parameter_that_no_rank_used_keeps_no_gradient():
    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(10, 4)
            self.spare = nn.Linear(10, 4)

        def forward(self, x):
            return self.used(x)

    model = WithSpare()
    ddp = DistributedDataParallel(model, MirrorWorld())
    x, y = batch()
    F.cross_entropy(ddp(x), y).backward()
    assert model.used.weight.grad is not None and model.spare.weight.grad is None


def test_a_graph_without_the_models_parameters_reduces_nothing():
    world = MirrorWorld()
    DistributedDataParallel(mlp(), world)
    world.events.clear()
    t = ember.tensor([1.0, 2.0], requires_grad=True)
    (t * 3).sum().backward()
    assert world.events == [] and t.grad.tolist() == [3.0, 3.0]


def test_a_world_of_one_adds_no_observer_and_a_closed_or_dropped_wrapper_stops_watching():
    before = len(autograd.walk_observers)
    DistributedDataParallel(mlp(), World())
    assert len(autograd.walk_observers) == before
    ddp = DistributedDataParallel(mlp(), MirrorWorld())
    assert len(autograd.walk_observers) == before + 1
    ddp.close()
    assert len(autograd.walk_observers) == before
    world = MirrorWorld()
    DistributedDataParallel(mlp(), world)  # dropped at once
    gc.collect()
    x, y = batch()
    F.cross_entropy(mlp()(x), y).backward()  # the first walk after that removes the dead observer
    assert len(autograd.walk_observers) == before


def test_models_that_differ_between_ranks_are_refused_naming_the_first_difference():
    class OtherRankDiffers(MirrorWorld):
        def all_gather_object(self, obj, timeout=None):
            theirs = [(*entry[:2], (24, 10), *entry[3:]) if entry[1] == "net.1.weight" else entry for entry in obj]
            return [obj, theirs]

    with pytest.raises(RanksDisagree, match=r"the model on rank 1 differs from rank 0's: parameter net\.1\.weight "
                                            r"of shape \(24, 10\) float32 on rank 1, parameter net\.1\.weight of "
                                            r"shape \(16, 10\) float32 on rank 0"):
        DistributedDataParallel(mlp(), OtherRankDiffers())
    assert RanksDisagree.raised_on_every_rank


def test_the_signature_lists_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    names = [(kind, name) for kind, name, *_ in signature(model)]
    assert ("parameter", "0.weight") in names and ("buffer", "1.running_mean") in names


def test_wrapper_argument_errors():
    with pytest.raises(TypeError, match="expected an ember Module, got list"):
        DistributedDataParallel([], MirrorWorld())
    with pytest.raises(ValueError, match="bucket_cap_mb must be > 0, got 0"):
        DistributedDataParallel(mlp(), MirrorWorld(), bucket_cap_mb=0)


def test_walk_observers_see_the_order_each_finished_node_its_gradients_and_the_end():
    seen = {"order": None, "nodes": [], "done": 0, "shapes": []}

    class Watcher:
        def node_done(self, index, g, grads):
            seen["nodes"].append(index)
            seen["shapes"].append((np.shape(g), type(grads) is tuple and np.shape(grads[0])))

        def walk_done(self):
            seen["done"] += 1

    def observe(order):
        seen["order"] = [type(node).__name__ for node in order]
        return Watcher()

    autograd.walk_observers.append(observe)
    a = ember.tensor([1.0, 2.0], requires_grad=True)
    ((a * 2).exp().sum()).backward()
    assert len(seen["order"]) == 3 and seen["nodes"] == [0, 1, 2] and seen["done"] == 1
    assert seen["shapes"] == [((), (2,)), ((2,), (2,)), ((2,), (2,))]  # sum, exp, mul: received, handed out
    autograd.walk_observers.remove(observe)
    ((a * 2).sum()).backward()
    assert seen["done"] == 1  # not watching any more


def _bucket_views(ddp) -> dict:
    return {id(p): bucket.views[i] for bucket in ddp._buckets for i, p in enumerate(bucket.params)}


def _grads_of(model, x, y) -> list[np.ndarray]:
    F.cross_entropy(model(x), y).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


def test_linear_layers_write_their_gradients_straight_into_the_bucket(monkeypatch):
    """The walk tells each Linear where its weight's and bias's slots are; the gradients land there (no copy in,
    no copy out) and equal one process's, bit for bit."""
    from ember.distributed.data_parallel import _Bucket

    x, y = batch(seed=3)
    reference = _grads_of(mlp(), x, y)
    model = mlp()
    ddp = DistributedDataParallel(model, MirrorWorld())
    in_place_when_packed = []
    pack = _Bucket.pack

    def spy(bucket):
        in_place_when_packed.extend(p.grad is not None and p.grad.data is bucket.views[i]
                                    for i, p in enumerate(bucket.params))
        pack(bucket)

    monkeypatch.setattr(_Bucket, "pack", spy)
    for step in range(2):  # the second walk finds last step's views dropped by zero_grad, and lands again
        for p in model.parameters():
            p.grad = None
        loss = F.cross_entropy(ddp(x), y)
        nodes = autograd._topological_order(loss._node)
        loss.backward()
        views = _bucket_views(ddp)
        for p, want in zip(model.parameters(), reference):
            assert p.grad.data is views[id(p)], f"step {step}: the gradient is not the bucket's view"
            np.testing.assert_array_equal(p.grad.numpy(), want)
        assert all(node.land is None for node in nodes if node.__dict__)  # told only for that walk
    assert in_place_when_packed == [True] * 12  # 6 parameters, 2 steps: nothing to copy into the buckets


def test_landing_is_what_the_copy_would_have_been(monkeypatch):
    """The same steps with the ops' landing turned off (every gradient copied into its bucket) give the same
    parameters, bit for bit."""
    from ember.ops.linalg import Linear

    def train(lands: bool):
        monkeypatch.setattr(Linear, "lands", Linear.lands if lands else frozenset())
        model = mlp()
        ddp = DistributedDataParallel(model, MirrorWorld(size=4))
        opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for step in range(3):
            x, y = batch(seed=10 + step)
            opt.zero_grad()
            F.cross_entropy(ddp(x), y).backward()
            opt.step()
        ddp.close()
        return [p.numpy().copy() for p in model.parameters()]

    for a, b in zip(train(True), train(False)):
        np.testing.assert_array_equal(a, b)


def test_a_weight_used_twice_is_added_up_then_copied_in():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(6, 6)

        def forward(self, x):
            return self.layer(ember.relu(self.layer(x)))

    rng = np.random.default_rng(0)
    x = ember.Tensor(rng.standard_normal((5, 6)))
    ember.manual_seed(1)
    alone = Tied().to(dtype="float64")
    (alone(x) ** 2).sum().backward()
    ember.manual_seed(1)
    model = Tied().to(dtype="float64")
    ddp = DistributedDataParallel(model, MirrorWorld())
    (ddp(x) ** 2).sum().backward()
    for p, q in zip(model.parameters(), alone.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
        assert p.grad.data is _bucket_views(ddp)[id(p)]  # averaged in the bucket all the same


def test_gradients_accumulated_into_last_steps_views_are_averaged_where_they_lie():
    """A synced step leaves .grad as views of the buckets; backward under no_sync then adds into them in place
    (into the buckets), and the next synced backward averages the whole sum: as one process accumulating."""
    (x1, y1), (x2, y2), (x3, y3) = batch(seed=1), batch(seed=2), batch(seed=3)
    reference = mlp()
    for x, y in ((x1, y1), (x2, y2), (x3, y3)):
        want = _grads_of(reference, x, y)
    model = mlp()
    ddp = DistributedDataParallel(model, MirrorWorld())
    F.cross_entropy(ddp(x1), y1).backward()
    with ddp.no_sync():
        F.cross_entropy(ddp(x2), y2).backward()
    F.cross_entropy(ddp(x3), y3).backward()
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-6, atol=1e-7)


def test_a_retained_graph_walked_again_without_sync_adds_to_the_landed_gradients():
    """The landing holds for one walk only: a second backward through the same graph under no_sync must add to
    the gradients (which live in the buckets now), not overwrite them."""
    x, y = batch(seed=4)
    want = [4 * g for g in _grads_of(mlp(), x, y)]
    model = mlp()
    ddp = DistributedDataParallel(model, MirrorWorld())
    loss = F.cross_entropy(ddp(x), y)
    loss.backward(retain_graph=True)
    with ddp.no_sync():
        loss.backward(ember.Tensor(np.float32(3.0)))  # 1 + 3 times the gradient (overwriting would give 3 + 3)
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-6, atol=1e-7)
