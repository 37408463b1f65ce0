"""Differentiable primitives: one module per family, each op a ``Function`` subclass.

Ops know raw arrays and their array module (``ctx.xp``), never ``Tensor``.
"""
