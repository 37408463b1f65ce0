"""Random op graphs that reuse nodes, compared with PyTorch: values and every leaf's gradient.

Each seed builds a random program over a few float64 leaves: every step applies an op to
operands drawn from *all* earlier values (leaves included), so nodes feed several ops, both
operands of one op are sometimes the same node, and leaves are used at several depths. The
output sums several of the values, and a random cotangent is propagated back. The same program
runs in PyTorch, and values and gradients must agree to round-off.

Gradient buffers handed by one op to several consumers (``x + x``, an ``Add`` passing its
incoming gradient to both operands, a leaf receiving a buffer still pending elsewhere) are what
this exercises; an aliasing bug in the graph walk shows up as a gradient off by a whole term.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember

# (name, arity, ember op, torch op); ops are chosen so values stay moderate over 20 steps.
UNARY = [
    ("tanh", lambda e, a: a.tanh(), lambda t, a: a.tanh()),
    ("sigmoid", lambda e, a: a.sigmoid(), lambda t, a: a.sigmoid()),
    ("sin", lambda e, a: a.sin(), lambda t, a: a.sin()),
    ("neg", lambda e, a: -a, lambda t, a: -a),
    ("scale", lambda e, a: a * 0.7, lambda t, a: a * 0.7),
    ("shift", lambda e, a: a + 0.3, lambda t, a: a + 0.3),
    ("rsub", lambda e, a: 1.0 - a, lambda t, a: 1.0 - a),
    ("square", lambda e, a: a**2 * 0.5, lambda t, a: a**2 * 0.5),
    ("exp_tanh", lambda e, a: a.tanh().exp(), lambda t, a: a.tanh().exp()),
    ("clone", lambda e, a: a.clone(), lambda t, a: a.clone()),
    ("reshape_roundtrip", lambda e, a: a.reshape(-1).reshape(a.shape), lambda t, a: a.reshape(-1).reshape(a.shape)),
    ("transpose_twice", lambda e, a: a.transpose(0, -1).transpose(0, -1),
     lambda t, a: a.transpose(0, -1).transpose(0, -1)),
    ("full_slice", lambda e, a: a[...], lambda t, a: a[...]),
    ("sum_keepdims", lambda e, a: a.sum(axis=0, keepdims=True), lambda t, a: a.sum(dim=0, keepdim=True)),
    ("mean_last", lambda e, a: a.mean(axis=-1, keepdims=True), lambda t, a: a.mean(dim=-1, keepdim=True)),
    ("relu_shift", lambda e, a: (a + 0.05).relu(), lambda t, a: (a + 0.05).relu()),
    ("softmax", lambda e, a: a.softmax(axis=-1), lambda t, a: a.softmax(dim=-1)),
    ("times_total", lambda e, a: a * a.sum() * 0.1, lambda t, a: a * a.sum() * 0.1),  # a 0-d node
]
BINARY = [
    ("add", lambda e, a, b: a + b, lambda t, a, b: a + b),
    ("sub", lambda e, a, b: a - b, lambda t, a, b: a - b),
    ("mul", lambda e, a, b: a * b, lambda t, a, b: a * b),
    ("div", lambda e, a, b: a / (1.5 + b * b), lambda t, a, b: a / (1.5 + b * b)),
    ("maximum", lambda e, a, b: e.maximum(a, b), lambda t, a, b: t.maximum(a, b)),
    ("where", lambda e, a, b: e.where(a > b, a, b * 0.5), lambda t, a, b: t.where(a > b, a, b * 0.5)),
    ("cat_split", lambda e, a, b: _cat_split(e.cat, a, b), lambda t, a, b: _cat_split(t.cat, a, b)),
    ("stack_sum", lambda e, a, b: _stack_sum(e.stack, a, b, {"axis": 0}),
     lambda t, a, b: _stack_sum(t.stack, a, b, {"dim": 0})),
]
LEAF_SHAPES = [(3, 4), (4,), (3, 1), (3, 4)]


def _cat_split(cat, a, b):
    """Concatenate (broadcast to a common shape first) and take the halves back: a + 2·b, via slices."""
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    both = cat([a.expand(*shape), b.expand(*shape)], 0)
    n = shape[0]
    return both[:n] + both[n:] * 2.0


def _stack_sum(stack, a, b, axis):
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    return stack([a.expand(*shape), b.expand(*shape) * 0.5]).sum(**axis)


def random_program(seed: int, steps: int = 18):
    """A list of (op index, operand indices) over values 0..len(LEAF_SHAPES)-1 (the leaves) and onwards."""
    rng = np.random.default_rng(seed)
    program = []
    n_values = len(LEAF_SHAPES)
    for _ in range(steps):
        if rng.random() < 0.4:
            op = ("u", int(rng.integers(len(UNARY))))
            operands = (int(rng.integers(n_values)),)
        else:
            op = ("b", int(rng.integers(len(BINARY))))
            a = int(rng.integers(n_values))
            b = a if rng.random() < 0.2 else int(rng.integers(n_values))  # sometimes both operands are one node
            operands = (a, b)
        program.append((op, operands))
        n_values += 1
    outputs = sorted(set(rng.integers(len(LEAF_SHAPES), n_values, size=4).tolist()) | {n_values - 1})
    return program, outputs


def run(program, outputs, leaves, lib, name):
    values = list(leaves)
    for (kind, index), operands in program:
        table = UNARY if kind == "u" else BINARY
        fn = table[index][1 if name == "ember" else 2]
        values.append(fn(lib, *[values[i] for i in operands]))
    total = values[outputs[0]] * 1.0
    for i in outputs[1:]:
        total = total + values[i]
    return total


def check_seed(seed: int, torch) -> None:
    program, outputs = random_program(seed)
    rng = np.random.default_rng(10_000 + seed)
    arrays = [rng.standard_normal(s) for s in LEAF_SHAPES]
    ours = [ember.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = run(program, outputs, ours, ember, "ember")
    ref = run(program, outputs, theirs, torch, "torch")
    where = f"seed {seed}: program {program}, outputs {outputs}"
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-11, atol=1e-12, err_msg=where)
    cotangent = rng.standard_normal(tuple(ref.shape))
    out.backward(cotangent)
    ref.backward(torch.from_numpy(cotangent))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if b.grad is None:
            assert a.grad is None or not np.any(a.grad.numpy()), f"{where}: leaf {i} should get no gradient"
            continue
        assert a.grad is not None, f"{where}: leaf {i} got no gradient"
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-11,
                                   err_msg=f"{where}: gradient of leaf {i}")


@pytest.mark.parametrize("block", range(10))
def test_random_graphs_match_torch(block, torch):
    for seed in range(block * 40, (block + 1) * 40):
        check_seed(seed, torch)


def test_the_reported_aliasing_case(torch):
    """The issue's reproduction: x feeds t = tanh(x), t + x, and x * t; a leaf's .grad aliased a pending buffer."""
    x = ember.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    t = x.tanh()
    (((t + x) * ember.tensor(np.array([1.0, 2.0, 3.0]))).sum() + (x * t).sum()).backward()
    xt = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    tt = xt.tanh()
    (((tt + xt) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum() + (xt * tt).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), [2.6418, 1.6584, 4.3173], atol=1e-4)
