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

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
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
    ``grad`` as read-only (it may be shared with other nodes) and return gradients already
    reduced to each input's shape.
    """

    inputs: tuple | None = None  # the input tensors; None once the node is released
    needs_input_grad: tuple | None = None

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
        for t in node.inputs or ():
            parent = t._node
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def backward(root, grad, retain_graph: bool = False) -> None:
    """Propagate ``grad`` (the gradient of some scalar w.r.t. ``root``) to every leaf that needs it.

    Gradients flowing into the same intermediate are summed out of place (never in place:
    an op may hand the same array to several inputs). Leaves accumulate into ``.grad``.
    Unless ``retain_graph``, every visited node is released afterwards.
    """
    top = root._node
    if top is None:
        root._accumulate_grad(grad, {id(grad)})
        return
    pending = {id(top): grad}
    given_to_leaves: set[int] = {id(grad)}  # the caller's array is never stored as a .grad
    for node in _topological_order(top):
        g = pending.pop(id(node), None)
        if g is None:
            if not retain_graph:
                node.release()
            continue
        inputs = node.inputs
        if inputs is None:
            raise RuntimeError(
                f"ember: trying to backward through {node.name} a second time, but its saved arrays "
                "were freed after the first backward. Pass retain_graph=True to the first call."
            )
        grads = node.backward(g)
        if type(grads) is not tuple:
            grads = (grads,)
        for t, tg in zip(inputs, grads):
            if tg is None or not t.requires_grad:
                continue
            parent = t._node
            if parent is None:
                t._accumulate_grad(tg, given_to_leaves)
            else:
                key = id(parent)
                prev = pending.get(key)
                pending[key] = tg if prev is None else prev + tg
        if not retain_graph:
            node.release()
