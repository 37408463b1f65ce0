"""PyTorch's reading of an index, as NumPy indexing.

NumPy and PyTorch agree on slices, None, Ellipsis, integer arrays and boolean masks, including
where the dimensions of separated advanced indices go. They differ in two places, and ember
follows PyTorch in both:

* an integer next to an advanced index: NumPy counts the integer as an advanced index too
  (``x[0, :, [1, 2]]`` has shape (2, 3) in NumPy), PyTorch selects with it first (shape (3, 2)).
  ``split_index`` returns such an index as two steps, a basic one (ints, slices, None) and then
  the advanced one;
* a list of lists (``x[[[0, 1], [1, 0]]]``): NumPy reads one index array, PyTorch 2.x a tuple of
  indices (and is changing that). Being ambiguous, it is an error that names both spellings.
"""

from __future__ import annotations

import numpy as np


def index_part(part, xp):
    """One component of an index, with lists and array-likes turned into arrays on the device."""
    if isinstance(part, (list, tuple)):
        if any(isinstance(p, (list, tuple, slice)) or hasattr(p, "shape") for p in part):
            raise IndexError(
                "an index that is a list of lists (or of slices/tensors) is ambiguous: NumPy reads it as one "
                "index array, PyTorch as a tuple of indices. Write x[tuple(idx)] for the second, "
                "x[ember.tensor(idx)] for the first"
            )
        if not part:
            return xp.zeros(0, dtype=np.int64)
        arr = xp.asarray(part)
        _check_index_dtype(arr)
        return arr
    if hasattr(part, "dtype") and getattr(part, "ndim", 0) > 0:
        _check_index_dtype(part)
        if xp is not np and type(part) is np.ndarray:  # a host index into a device tensor moves (as in PyTorch)
            part = xp.asarray(part)
    if isinstance(part, float):
        raise IndexError(f"only integers, slices, None, Ellipsis, boolean masks and integer tensors are valid "
                         f"indices, got the float {part}")
    return part


def _check_index_dtype(arr) -> None:
    if arr.dtype.kind not in "iub":
        raise IndexError(f"tensors used as indices must be integer or boolean, got {arr.dtype}")


def _is_int(part) -> bool:
    return isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_))


def _is_advanced(part) -> bool:
    return hasattr(part, "dtype") and getattr(part, "ndim", 0) > 0


def split_index(index: tuple, ndim: int):
    """(index, None) when NumPy reads ``index`` as PyTorch does; else (basic, advanced), to apply in turn."""
    parts = tuple(int(p) if hasattr(p, "dtype") and p.ndim == 0 and p.dtype.kind in "iu" else p for p in index)
    if not (any(_is_int(p) for p in parts) and any(_is_advanced(p) for p in parts)):
        return parts, None
    consumed = sum(p.ndim if _is_advanced(p) and p.dtype == np.bool_ else 0 if p is None or p is Ellipsis else 1
                   for p in parts)
    basic, advanced, out_dim = [], [], 0
    for p in parts:
        if p is Ellipsis:
            fill = ndim - consumed
            basic.extend([slice(None)] * fill)
            out_dim += fill
        elif _is_int(p):
            basic.append(p)
        elif _is_advanced(p):
            width = p.ndim if p.dtype == np.bool_ else 1
            basic.extend([slice(None)] * width)
            advanced.append((out_dim, p))
            out_dim += width
        else:  # a slice or None keeps (or adds) one output dimension
            basic.append(p)
            out_dim += 1
    second, pos = [], 0
    for dim, arr in advanced:
        second.extend([slice(None)] * (dim - pos))
        second.append(arr)
        pos = dim + (arr.ndim if arr.dtype == np.bool_ else 1)
    return tuple(basic), tuple(second)


def select(arr, index, then):
    """``arr`` indexed by a (possibly two-step) index from ``split_index``."""
    return arr[index] if then is None else arr[index][then]


def assign(arr, index, then, value) -> None:
    """``arr[index] = value`` for a (possibly two-step) index; the first step is basic, so a view."""
    if then is None:
        arr[index] = value
    else:
        arr[index][then] = value
