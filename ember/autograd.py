"""Reverse-mode automatic differentiation: the Function node, grad mode and the graph walk.

An op is a ``Function`` subclass with ``forward(ctx, *arrays, **attrs)`` and
``backward(ctx, grad)`` side by side. The instance *is* the ctx: forward saves what backward
needs as attributes on it, and the same instance is the graph node that the output tensor
points to. Ops see raw arrays and ``ctx.xp`` (numpy or cupy) only, never a Tensor.

This module knows tensors only by duck typing (``.requires_grad``, ``._node``,
``._accumulate_grad``), so the dependency runs one way: tensor -> autograd -> backend.
"""

from __future__ import annotations

import functools
import threading

import numpy as np


class _GradMode(threading.local):
    """Whether ops record the graph, per thread (as PyTorch's grad mode): a server thread decoding under
    ``no_grad`` must not switch recording off for a training loop running in another thread."""

    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off, in the calling thread."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        self.prev = _grad_mode.enabled
        _grad_mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):
    """Run without recording the graph: for evaluation and for in-place parameter updates."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    def __init__(self):
        super().__init__(True)


class Function:
    """One differentiable op; an instance is both its saved context and its graph node.

    Subclasses implement::

        def forward(ctx, *arrays, **attrs) -> array
        def backward(ctx, grad) -> array | tuple[array | None, ...]   # one per input

    The dispatcher sets ``ctx.xp`` (the array module) and ``ctx.needs_input_grad`` (a tuple of
    bools, or ``None`` when no graph is recorded) before ``forward``. ``backward`` must treat
    ``grad`` as read-only, and return gradients already reduced to each input's shape: ``grad``
    itself, views of it, or new arrays that the op does not keep (the graph walk may hand them to
    a leaf's ``.grad`` and add into them in place).

    Two class attributes declare how an op's arrays relate to its tensors:

    ``saves``
        What ``backward`` reads by reference: input positions (ints), ``"inputs"`` (all of them)
        and/or ``"out"`` (the output). ``None``, the default, means all inputs and the output.
        The in-place write clock is recorded at forward time and the tensors' write stamps are
        checked before ``backward``, so a saved tensor changed in place in between is an error,
        not a wrong gradient.
        Copies and derived arrays (a padded copy, a product) need no declaration.
    ``returns_view``
        The output may share memory with input 0 (reshape, slicing, transpose); the output
        tensor then shares input 0's version counter, so writes through either are seen.
    ``lands``
        The input positions whose gradient ``backward`` can write into an array it is given
        (``out=``): a walk watcher may set ``node.land = {position: array}`` before the node runs
        (the data-parallel wrapper: a weight's gradient straight into its slot of the gradient
        bucket); the walk then keeps that array as the leaf's ``.grad`` without a copy.
    """

    saves: tuple | None = None
    returns_view = False
    lands: frozenset = frozenset()
    land: dict | None = None  # {input position: array} for this walk, set by a walk watcher (see ``lands``)

    inputs: tuple | None = None  # the input tensors; None once the node is released
    parents: tuple | None = None  # each input's producing node at record time (None for leaves)
    needs_input_grad: tuple | None = None
    clock: int | None = None  # the in-place write clock at forward time, when the op saves anything
    out_box: list | None = None  # the output's version box, when the op saves its output

    def forward(ctx, *arrays, **attrs):
        raise NotImplementedError

    def backward(ctx, grad):
        raise NotImplementedError

    def release(self) -> None:
        """Drop the saved arrays and the input references so the graph can be freed."""
        self.__dict__.clear()

    @property
    def name(self) -> str:
        return type(self).__name__

    def check_saved_versions(self) -> None:
        """Raise if a tensor that backward reads was written in place after the forward pass.

        Each write stamps the tensor's version box with a global write clock; anything stamped
        after the clock this node recorded was written since.
        """
        saves, clock = self.saves, self.clock
        everything = saves is None or "inputs" in saves
        for i, t in enumerate(self.inputs):
            box = t._vbox
            if box is not None and box[2] > clock and (everything or i in saves):
                self._stale(f"input {i} (shape {tuple(t.data.shape)}, {t.data.dtype})", box[0])
        if self.out_box is not None and self.out_box[2] > clock:
            self._stale("output", self.out_box[0])

    def _stale(self, what: str, version: int):
        raise RuntimeError(
            f"ember: {self.name} needs its {what} to compute the gradient, but that tensor was modified by an "
            f"in-place operation after the forward pass (it is now at version {version}). "
            "Modify a .clone() instead, or compute the gradient before changing it."
        )


_CROSSED = {(True, True): (0, 1), (True, False): (1,), (False, True): (0,), (False, False): ()}


def crossed_saves(needs) -> tuple:
    """``saves`` of a product of inputs 0 and 1 (plus, say, a bias): each is read only for the other's gradient."""
    return () if needs is None else _CROSSED[needs[:2]]


def _topological_order(root: Function) -> list[Function]:
    """Nodes reachable from ``root``, each before the nodes that produced its inputs."""
    order: list[Function] = []
    visited: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.parents or ():
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def _owned_flags(grads, g, g_owned: bool) -> list[bool]:
    """For each gradient an op returned: may its receiver write into it?

    Only an array that nobody else holds: a new array that owns its memory (``base`` is None: not
    a view, not a broadcast), or ``g`` itself when the walk owned ``g``, and returned for one input
    only. An array returned for two inputs (``x + x``'s backward hands ``g`` to both) is shared.
    """
    flags = [tg is not None and (g_owned if tg is g else tg.base is None) for tg in grads]
    if len(grads) > 1:
        for i, tg in enumerate(grads):
            if flags[i] and any(other is tg for j, other in enumerate(grads) if j != i):
                flags[i] = False
    return flags


# Callables that watch every graph walk (the data-parallel wrapper, to all-reduce gradient buckets as soon as the
# walk has finished writing them). Each is called with the walk's nodes in the order they will run and returns None
# (not interested) or a watcher: ``watcher.node_done(i, g, grads)`` after node i has handed out its gradients
# (``g`` the gradient it received, ``grads`` the tuple its backward returned: the profiler reads their shapes and
# sizes) and ``watcher.walk_done()`` at the end. Nobody watching costs one truthiness test per walk and an empty
# loop per node.
walk_observers: list = []


def _watchers(order: list[Function]) -> list:
    return [w for w in (observe(order) for observe in list(walk_observers)) if w is not None]


def backward(root, grad, retain_graph: bool = False) -> None:
    """Propagate ``grad`` (the gradient of some scalar w.r.t. ``root``) to every leaf that needs it.

    Gradient buffers have one owner at a time. Each pending gradient is kept with a flag that
    says whether the walk owns it: only owned buffers are added into in place or stored as a
    leaf's ``.grad``; shared ones (the caller's array, an array an op handed to two inputs, a
    view) are added out of place and copied before a leaf keeps them. Before each node's
    backward, the tensors it saved are checked for in-place changes. Unless ``retain_graph``,
    every visited node is released afterwards.
    """
    top = root._node
    if top is None:
        root._accumulate_grad(grad, owned=False)
        return
    pending: dict[Function, tuple] = {top: (grad, False)}  # node -> (gradient of its output, owned)
    order = _topological_order(top)
    watchers = _watchers(order) if walk_observers else ()
    for index, node in enumerate(order):
        entry = pending.pop(node, None)
        if entry is None:
            if not retain_graph:
                node.release()
            continue
        inputs = node.inputs
        if inputs is None:
            raise RuntimeError(
                f"ember: trying to backward through {node.name} a second time, but its saved arrays "
                "were freed after the first backward. Pass retain_graph=True to the first call."
            )
        if node.clock is not None:
            node.check_saved_versions()
        g, g_owned = entry
        grads = node.backward(g)
        if type(grads) is not tuple:
            grads = (grads,)
        owned = _owned_flags(grads, g, g_owned) if len(grads) > 1 else None
        needs, parents = node.needs_input_grad, node.parents
        for i, tg in enumerate(grads):
            if tg is None or not needs[i]:
                continue
            t = inputs[i]
            if tg.shape != t.data.shape:
                raise RuntimeError(
                    f"ember: internal error: {node.name}.backward returned a gradient of shape {tg.shape} "
                    f"for input {i} of shape {t.data.shape}"
                )
            own = owned[i] if owned else (g_owned if tg is g else tg.base is None)
            if own and isinstance(tg, np.generic):  # NumPy's 0-d reductions give immutable scalars
                tg = np.asarray(tg)
            parent = parents[i]
            if parent is None:
                if node.land is not None and tg is node.land.get(i):
                    own = True  # written where a watcher asked: that array becomes .grad as it is
                t._accumulate_grad(tg, own)
                continue
            prev = pending.get(parent)
            if prev is None:
                pending[parent] = (tg, own)
            elif prev[1]:
                prev[0].__iadd__(tg)  # the walk owns the buffer: add in place
            else:
                pending[parent] = (prev[0] + tg, True)
        if not retain_graph:
            node.release()
        for watcher in watchers:
            watcher.node_done(index, g, grads)
    for watcher in watchers:
        watcher.walk_done()
