"""Every op's ``saves`` and ``returns_view`` declarations match what its forward really keeps.

The version checks that catch in-place changes to saved tensors rely on each op declaring which
inputs (and whether its output) its backward reads by reference. These tests run every op-table
row, find every array each graph node kept on its context, and require that any array sharing
memory with an input or the output was declared; and that any output sharing memory with an
input comes from an op declared ``returns_view``.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.autograd import Function
from ember.testing import OPS, make_inputs

_BOOKKEEPING = {"inputs", "parents", "needs_input_grad", "clock", "out_box", "xp", "saves"}


def _kept_arrays(obj, depth=0):
    """Arrays reachable from a node's saved attributes (through lists, tuples, dicts and small objects)."""
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _kept_arrays(item, depth)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _kept_arrays(item, depth)
    elif depth < 2 and hasattr(obj, "__dict__") and not isinstance(obj, (type, ember.Tensor)):
        if type(obj).__module__.startswith("ember"):
            yield from _kept_arrays(vars(obj), depth + 1)


def _nodes_with_outputs(out):
    """Every node of out's graph, with the array it produced."""
    produced = {out._node: out.data}
    order, stack, seen = [], [out._node], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        for parent, t in zip(node.parents, node.inputs):
            if parent is not None:
                produced.setdefault(parent, t.data)
                stack.append(parent)
    return [(node, produced[node]) for node in order]


def _declared(node: Function) -> set:
    saves = node.saves
    if saves is None:
        return set(range(len(node.inputs))) | {"out"}
    declared = set()
    for s in saves:
        declared |= set(range(len(node.inputs))) if s == "inputs" else {s}
    return declared


def _graph(case):
    """(node, the array it produced) for every node of the row's graph."""
    tensors = [ember.tensor(a, requires_grad=True) for a in make_inputs(case, np.float64)]
    if case.reseed:
        ember.manual_seed(0)
    return _nodes_with_outputs(case.fn(*tensors))


@pytest.mark.parametrize("case", OPS, ids=[c.name for c in OPS])
def test_saved_arrays_are_declared(case):
    for node, produced in _graph(case):
        kept = [a for k, v in vars(node).items() if k not in _BOOKKEEPING for a in _kept_arrays(v)]
        view_of_input = node.returns_view and np.shares_memory(produced, node.inputs[0].data)
        found = set()
        for arr in kept:
            for i, t in enumerate(node.inputs):
                if np.shares_memory(arr, t.data):
                    found.add(i)
            if np.shares_memory(arr, produced):
                found.add(0 if view_of_input else "out")
        missing = found - _declared(node)
        assert not missing, f"{case.name}: {node.name} keeps {sorted(map(str, missing))} but does not declare it"


@pytest.mark.parametrize("case", OPS, ids=[c.name for c in OPS])
def test_outputs_that_alias_an_input_are_declared_views(case):
    for node, produced in _graph(case):
        for i, t in enumerate(node.inputs):
            if np.shares_memory(produced, t.data):
                assert node.returns_view and i == 0, f"{case.name}: {node.name}'s output aliases input {i}"
