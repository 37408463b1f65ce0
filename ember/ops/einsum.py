"""Einstein summation, with the gradient of each operand as another einsum.

The functional layer (``ember.einsum``) parses the equation and hands the op explicit subscripts: one
letter per axis, the ellipsis spelt out, and the size-1 axes that broadcast against a larger size
listed in ``squeeze`` (they are dropped before contracting, which is what broadcasting means here).

The gradient of operand i contracts the output gradient with the other operands onto operand i's
letters. Letters that only operand i has (summed in the forward pass) come back by broadcasting;
a letter repeated within operand i (a diagonal, ``'ii->i'``) is written onto that diagonal of a
zero array, through a strided view.
"""

from __future__ import annotations

from ..autograd import Function


def _drop_axes(a, axes):
    return a.reshape([n for d, n in enumerate(a.shape) if d not in axes]) if axes else a


class Einsum(Function):
    """``einsum(','.join(terms) + '->' + output, *operands)`` with explicit, validated subscripts."""

    saves = ("inputs",)

    def forward(ctx, *arrays, terms, output, squeeze):
        xp = ctx.xp
        ops = [_drop_axes(a, axes) for a, axes in zip(arrays, squeeze)]
        out = xp.einsum(f"{','.join(terms)}->{output}", *ops, optimize=len(ops) > 1)
        if any(xp.may_share_memory(out, a) for a in arrays):  # one-operand einsum can return a view
            out = out.copy()
        needs = ctx.needs_input_grad
        if needs is not None:  # operand j is read only for the gradients of the others
            n = len(arrays)
            ctx.saves = tuple(j for j in range(n) if any(needs[i] for i in range(n) if i != j))
            ctx.ops = [op if j in ctx.saves else None for j, op in enumerate(ops)]
        ctx.terms, ctx.output = terms, output
        ctx.shapes, ctx.reduced = [a.shape for a in arrays], [op.shape for op in ops]
        return out

    def backward(ctx, g):
        grads = []
        for i, need in enumerate(ctx.needs_input_grad):
            grads.append(_operand_grad(ctx.xp, g, ctx, i) if need else None)
        return tuple(grads)


def _operand_grad(xp, g, ctx, i):
    """The gradient of operand ``i``."""
    terms, output, shape, reduced_shape = ctx.terms, ctx.output, ctx.shapes[i], ctx.reduced[i]
    term = terms[i]
    other_terms = [t for j, t in enumerate(terms) if j != i]
    other_ops = [op for j, op in enumerate(ctx.ops) if j != i]
    letters = "".join(dict.fromkeys(term))  # unique, in order of first appearance
    elsewhere = set(output).union(*other_terms)
    kept = "".join(c for c in letters if c in elsewhere)
    sizes = dict(zip(term, reduced_shape))
    inputs = ",".join([output, *other_terms])
    h = xp.einsum(f"{inputs}->{kept}", g, *other_ops, optimize=len(other_ops) > 0)
    if kept != letters:  # letters only operand i has: the gradient is constant along them
        h = h.reshape([sizes[c] if c in kept else 1 for c in letters])
        h = xp.broadcast_to(h, [sizes[c] for c in letters])
    if letters == term:
        return h.reshape(shape)
    grad = xp.zeros(reduced_shape, dtype=g.dtype)
    strides = [sum(s for c2, s in zip(term, grad.strides) if c2 == c) for c in letters]
    diagonal = xp.lib.stride_tricks.as_strided(grad, shape=[sizes[c] for c in letters], strides=strides)
    diagonal[...] = h
    return grad.reshape(shape)
