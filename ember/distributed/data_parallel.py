"""Data-parallel training: every rank holds the whole model, trains on its shard, and averages gradients.

``DistributedDataParallel(model)`` checks that every rank built the same model (names, shapes, dtypes: an
all-gather of the signature), copies rank 0's parameters and buffers to every rank, and from then on averages the
gradients over the ranks inside ``loss.backward()``, so the optimizer, the schedule and gradient clipping run
unchanged on every rank and keep the replicas identical. A step with batch B on each of N ranks is a step with
batch N·B on one process (for losses that are means over the batch).

Gradients travel in buckets: flat contiguous buffers of up to ``bucket_cap_mb`` of one dtype, parameters taken in
reverse registration order (the order backward tends to finish them), one in-place all-reduce per bucket instead of
one per parameter. With ``overlap`` a bucket starts as soon as the graph walk has written the last gradient of its
parameters (``ember.autograd.walk_observers``), while the rest of backward runs; the walk's end waits for all. A
slot per parameter after its gradient counts the ranks that had a gradient for it: a parameter no rank used keeps
``grad = None`` (as in one process, where Adam then leaves it alone), one that some rank used gets the average with
zeros from the others.

Each gradient comes back as a view of its bucket (PyTorch's ``gradient_as_bucket_view``), and goes in without a
copy where it can: a layer whose op can write its gradient where it is told (``Function.lands``: ``Linear``'s
weight and bias) and that is the only writer of that parameter in the walk writes it straight into the bucket; a
gradient that already lives there (accumulated under ``no_sync`` into last step's view) stays. Others are copied
in. The buckets are reduced with ``mean`` (divided once the ranks' sums are in: on one node, by each rank's
slice). The views stay valid until the next averaging overwrites the bucket; ``zero_grad()`` drops them as it
drops any gradient. On one node the buckets lie in the ranks' shared memory (``World.all_reduce_buffer``).
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np

from .. import autograd, backend
from ..nn.module import Module
from ..tensor import Tensor
from .comm import RanksDisagree, World, get_world

DEFAULT_BUCKET_MB = 25.0


def signature(module: Module) -> list[tuple]:
    """What must match on every rank: each parameter's and buffer's name, shape, dtype (and requires_grad)."""
    params = [("parameter", name, tuple(p.shape), str(p.dtype), bool(p.requires_grad))
              for name, p in module.named_parameters()]
    buffers = [("buffer", name, tuple(b.shape), str(b.dtype)) for name, b in module.named_buffers()]
    return params + buffers


def check_same_model(module: Module, world: World) -> None:
    """Raise ``RanksDisagree`` on every rank when any rank's model differs from rank 0's, naming the first
    difference (a rank that built another model would all-reduce mismatched buffers: garbage, or a hang)."""
    mine = signature(module)
    everyone = world.all_gather_object(mine)
    for rank, theirs in enumerate(everyone):
        if theirs != everyone[0]:
            raise RanksDisagree(f"DistributedDataParallel: the model on rank {rank} differs from rank 0's: "
                                f"{_first_difference(everyone[0], theirs, rank)}; every rank must build the same "
                                f"model ({type(module).__name__}, same configuration)")


def _first_difference(reference: list[tuple], other: list[tuple], rank: int) -> str:
    for mine, theirs in zip(reference, other):
        if mine != theirs:
            return f"{_describe(theirs)} on rank {rank}, {_describe(mine)} on rank 0"
    longer, who = (reference, 0) if len(reference) > len(other) else (other, rank)
    extra = longer[min(len(reference), len(other))]
    return f"{len(reference)} tensors on rank 0, {len(other)} on rank {rank} (the first extra, on rank {who}: " \
           f"{_describe(extra)})"


def _describe(entry: tuple) -> str:
    kind, name, shape, dtype = entry[:4]
    return f"{kind} {name} of shape {shape} {dtype}"


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer: gradient i at ``offsets[i]`` (``views[i]``,
    in the parameter's shape), then one slot per parameter for whether a rank had a gradient for it (its mean
    over the ranks is 0 where none had)."""

    def __init__(self, params: list[Tensor], dtype, world: World):
        self.params = params
        self.sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int).tolist()
        self.total = self.offsets[-1]
        self.buffer = world.all_reduce_buffer(self.total + len(params), dtype)  # in shared memory on one node
        self.views = [self.buffer[self.offsets[i]:self.offsets[i + 1]].reshape(p.data.shape)
                      for i, p in enumerate(params)]
        self.on_host = [type(p.data) is np.ndarray for p in params]  # gradients may live in the buffer itself

    def pack(self) -> None:
        """Each gradient into the buffer (zeros and a slot of 0 where there is none), unless it is there already
        (written there by its layer, or last step's view accumulated into)."""
        for i, p in enumerate(self.params):
            view = self.views[i]
            if p.grad is None:
                view[...] = 0
                self.buffer[self.total + i] = 0
                continue
            if p.grad.data is not view:
                view[...] = backend.to_device(p.grad.data, backend.CPU)
            self.buffer[self.total + i] = 1

    def landings(self) -> dict:
        """{id(parameter): its view} for the parameters whose gradient may be written straight into the buffer:
        NumPy parameters with no gradient yet (a gradient to add to is added to where it is)."""
        return {id(p): self.views[i] for i, p in enumerate(self.params) if self.on_host[i] and p.grad is None}

    def unpack(self) -> None:
        """The averaged gradients back as ``.grad``: views of the buffer on the CPU, copies on another device."""
        for i, p in enumerate(self.params):
            if self.buffer[self.total + i] == 0:  # no rank had a gradient: as in one process, there is none
                continue
            mean = self.views[i]
            if self.on_host[i]:
                if p.grad is None or p.grad.data is not mean:
                    p.grad = Tensor(mean)
            elif p.grad is None:
                p.grad = Tensor(backend.to_device(mean, p.device))
            else:
                p.grad.data[...] = backend.array_module(p.grad.data).asarray(backend.to_device(mean, p.device))


class _BucketWalk:
    """One graph walk's view of the buckets: when each becomes ready (the index of the last node that writes a
    gradient of one of its parameters), which have started, and the end of the walk."""

    def __init__(self, ddp: DistributedDataParallel, ready_at: list[int], landed: list):
        self.ddp = ddp
        self.order = sorted(range(len(ready_at)), key=ready_at.__getitem__)
        self.ready_at = ready_at
        self.landed = landed  # the nodes told where to write gradients: told no more once the walk ends
        self.next = 0  # position in self.order of the next bucket to start
        self.started: list = []

    def node_done(self, index: int, g=None, grads=None) -> None:
        order, ready_at = self.order, self.ready_at
        while self.next < len(order) and ready_at[order[self.next]] <= index:
            self._start(order[self.next])
        if self.started:
            self.ddp.world.progress(self.started)

    def _start(self, b: int) -> None:
        bucket = self.ddp._buckets[b]
        bucket.pack()
        self.started.append(self.ddp.world.all_reduce_start(bucket.buffer, "mean"))
        self.next += 1

    def walk_done(self) -> None:
        _forget_landings(self.landed)
        while self.next < len(self.order):
            self._start(self.order[self.next])
        self.ddp.world.wait_all(self.started)
        for bucket in self.ddp._buckets:
            bucket.unpack()


class _EndOfWalk:
    """Without overlap: every bucket is reduced, one after the other, when the walk ends."""

    def __init__(self, ddp: DistributedDataParallel, landed: list):
        self.ddp = ddp
        self.landed = landed

    def node_done(self, index: int, g=None, grads=None) -> None:
        pass

    def walk_done(self) -> None:
        _forget_landings(self.landed)
        self.ddp.sync_gradients()


def _forget_landings(nodes: list) -> None:
    for node in nodes:
        node.land = None


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of ``world`` (default: ``init()``'s).

    Args:
        module: the model, built the same way on every rank (checked).
        bucket_cap_mb: the largest bucket, in MiB (PyTorch's default, 25).
        overlap: start each bucket's all-reduce during backward, as soon as its gradients are complete (else all
            of them when backward ends).
        broadcast_buffers: copy rank 0's buffers (running statistics) to every rank at construction and at the
            start of every training forward (with grad enabled), as PyTorch's DDP does: the running statistics
            then follow rank 0's shards, and rank 0's copy is the one saved. One broadcast per buffer dtype.

    Call it as the model; gradients are averaged when ``backward()`` returns. ``no_sync()`` skips the averaging
    (gradient accumulation over micro-batches: average once, at the last). Save ``ddp.module``, on rank 0 only.
    """

    def __init__(self, module: Module, world: World | None = None, bucket_cap_mb: float = DEFAULT_BUCKET_MB,
                 overlap: bool = True, broadcast_buffers: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an ember Module, got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}")
        self.module = module
        self.world = world or get_world()
        self.overlap = bool(overlap)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = float(bucket_cap_mb)
        self._sync = True
        check_same_model(module, self.world)
        self._broadcast_state(broadcast_buffers)
        self._buffer_groups = self._group_buffers(module) if self.world.size > 1 and broadcast_buffers else []
        self._trainable = [p for p in module.parameters() if p.requires_grad]
        self._buckets = self._make_buckets(self._trainable, int(bucket_cap_mb * 2**20), self.world)
        self._bucket_of = {id(p): b for b, bucket in enumerate(self._buckets) for p in bucket.params}
        self._observer = _observer(weakref.ref(self)) if self.world.size > 1 else None
        if self._observer is not None:
            autograd.walk_observers.append(self._observer)

    def forward(self, *args, **kwargs):
        if self._buffer_groups and self.training and autograd.is_grad_enabled():
            self._sync_buffers()
        return self.module(*args, **kwargs)

    def extra_repr(self) -> str:
        sizes = ", ".join(str(b.total) for b in self._buckets)
        return f"world={self.world.size}, buckets=[{sizes}] elements, overlap={self.overlap}"

    # -- set-up ----------------------------------------------------------------------------------------------------
    def _broadcast_state(self, with_buffers: bool) -> None:
        """Rank 0's parameters (and buffers) on every rank, so the replicas start equal whatever each seeded."""
        if self.world.size == 1:
            return
        tensors = list(self.module.parameters()) + (list(self.module.buffers()) if with_buffers else [])
        with autograd.no_grad():
            for t in tensors:
                self.world.broadcast(t)  # in place; bumps the tensor's version

    @staticmethod
    def _group_buffers(module: Module) -> list[tuple[np.dtype, list[Tensor]]]:
        """The module's non-empty buffers by dtype, each group broadcast as one flat array."""
        groups: dict = {}
        for b in module.buffers():
            if b.data.size:
                groups.setdefault(np.dtype(b.dtype), []).append(b)
        return list(groups.items())

    def _sync_buffers(self) -> None:
        """Rank 0's buffers on every rank now: one flat broadcast per dtype, copied back in place."""
        for dtype, buffers in self._buffer_groups:
            flat = np.concatenate([backend.to_device(b.data, backend.CPU).reshape(-1) for b in buffers]).astype(
                dtype, copy=False)
            self.world.broadcast(flat)
            offset = 0
            for b in buffers:
                piece = flat[offset:offset + b.data.size].reshape(b.data.shape)
                offset += b.data.size
                b.data[...] = backend.array_module(b.data).asarray(backend.to_device(piece, b.device))

    @staticmethod
    def _make_buckets(params: list[Tensor], cap_bytes: int, world: World) -> list[_Bucket]:
        """Parameters in reverse order, grouped by dtype, each group cut where a bucket would pass the cap."""
        buckets: list[_Bucket] = []
        open_groups: dict = {}  # dtype -> (params, bytes)
        for p in reversed(params):
            dtype = np.dtype(p.dtype)
            group, size = open_groups.get(dtype, ([], 0))
            if group and size + p.data.nbytes > cap_bytes:
                buckets.append(_Bucket(group, dtype, world))
                group, size = [], 0
            open_groups[dtype] = (group + [p], size + p.data.nbytes)
        buckets.extend(_Bucket(group, dtype, world) for dtype, (group, _) in open_groups.items() if group)
        return buckets

    # -- gradient averaging ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes in this block accumulate local gradients only; the next one outside averages the sum."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def sync_gradients(self) -> None:
        """Average every gradient over the ranks now (backward does it by itself; this is for gradients made
        another way, or after ``no_sync``)."""
        if self.world.size == 1:
            return
        for bucket in self._buckets:
            bucket.pack()
            self.world.all_reduce(bucket.buffer, "mean")
            bucket.unpack()

    def _watch(self, order: list) -> _BucketWalk | _EndOfWalk | None:
        """Called at the start of each graph walk: None unless it reaches this model's parameters; else when each
        bucket's last gradient is written (the last node that hands one of its parameters a gradient)."""
        if not self._sync:
            return None
        bucket_of = self._bucket_of
        ready_at = [-1] * len(self._buckets)
        writers: dict = {}  # id(parameter) -> how many nodes of this walk write its gradient
        can_land: list = []  # (node, input position, parameter) where the op could write into the bucket
        for index, node in enumerate(order):
            inputs, needs = node.inputs, node.needs_input_grad
            if inputs is None or needs is None:
                continue
            lands = node.lands
            for i, (t, parent, need) in enumerate(zip(inputs, node.parents, needs)):
                if need and parent is None:
                    b = bucket_of.get(id(t))
                    if b is not None:
                        ready_at[b] = index
                        writers[id(t)] = writers.get(id(t), 0) + 1
                        if i in lands:
                            can_land.append((node, i, t, b))
        if not writers:
            return None
        landed = self._tell_where_to_land(can_land, writers)
        return _BucketWalk(self, ready_at, landed) if self.overlap else _EndOfWalk(self, landed)

    def _tell_where_to_land(self, can_land: list, writers: dict) -> list:
        """Give each node that alone writes a parameter's first gradient of this walk that parameter's view of its
        bucket to write into (``Function.land``); returns the nodes told. A parameter written by several nodes
        (a weight used twice) or holding a gradient already (accumulation) is added up as usual and copied in."""
        landed, told = [], set()
        views: dict = {}
        for node, i, t, b in can_land:
            if writers[id(t)] != 1:
                continue
            if b not in views:
                views[b] = self._buckets[b].landings()
            view = views[b].get(id(t))
            if view is None or view.dtype != t.data.dtype:
                continue
            if id(node) not in told:
                node.land = {}
                told.add(id(node))
                landed.append(node)
            node.land[i] = view
        return landed

    def close(self) -> None:
        """Stop averaging gradients (the wrapper no longer watches backward)."""
        if self._observer in autograd.walk_observers:
            autograd.walk_observers.remove(self._observer)
        self._observer = None


def _observer(ref):
    """A walk observer that holds the wrapper weakly: a wrapper that is gone stops watching."""

    def observe(order):
        ddp = ref()
        if ddp is None:
            autograd.walk_observers.remove(observe)
            return None
        return ddp._watch(order)

    return observe
