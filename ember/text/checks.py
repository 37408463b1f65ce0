"""Checks shared by the tokenizers, their files and the models that read token ids.

A wrong id must be an error, not a different token: Python's negative indexing would turn -1 into
the last token, ``int()`` would turn 2.7 into 2 and True into 1. A wrong tokenizer file must be an
error that names the file and the key, not an AttributeError from deep inside the loader.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class TokenizerFileError(ValueError):
    """A tokenizer file that cannot be loaded: the message names the file, the key and what was wrong."""


_PLAIN_INTS = {int}  # what the ids almost always are: no further type check


def check_token_ids(ids, vocab_size: int, who: str) -> list[int]:
    """``ids`` (a sequence, a 1-d NumPy array or an ember Tensor) as a list of ints in [0, ``vocab_size``).

    Raises TypeError for an id that is not an integer (a float, a bool, a string) and ValueError for
    one out of range, naming the id, its position and the valid range. Each check is one C-level
    pass (the types as a set, then min and max); only the error path looks for the position.
    """
    ids = _as_list(ids, who)
    types = set(map(type, ids))
    if types != _PLAIN_INTS and not all(map(_is_integer_type, types)):
        at = next(i for i, v in enumerate(ids) if not _is_integer_type(type(v)))
        bad = ids[at]
        shown = bad.item() if isinstance(bad, np.generic) else bad  # 3.0, not np.float64(3.0)
        raise TypeError(f"{who}: token id {shown!r} at position {at} is a {type(bad).__name__}, not an "
                        f"integer; token ids are integers in [0, {vocab_size})")
    if ids and (min(ids) < 0 or max(ids) >= vocab_size):
        at = next(i for i, v in enumerate(ids) if not 0 <= v < vocab_size)
        raise ValueError(f"{who}: token id {ids[at]} at position {at} is out of range [0, {vocab_size})")
    return ids


def _as_list(ids, who: str) -> list:
    """A list of the ids of a sequence, a 1-d array or a Tensor (a list is used as it is)."""
    if isinstance(ids, list):
        return ids
    if isinstance(ids, Tensor):
        ids = ids.numpy()
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"{who}: expected a 1-d sequence of token ids, got an array of shape {ids.shape}")
        return ids.tolist()  # Python ints (or the floats/bools that the type check names)
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"{who}: expected a sequence of token ids, got {type(ids).__name__}")
    return list(ids)


def is_token_id(value) -> bool:
    """An integer (Python or NumPy), not a bool, whatever its range."""
    return _is_integer_type(type(value))


def _is_integer_type(kind: type) -> bool:
    """Python and NumPy integers are ids; bools (a subclass of int) are not."""
    return issubclass(kind, (int, np.integer)) and not issubclass(kind, bool)


# -- tokenizer files ------------------------------------------------------------------------------
_REQUIRED = object()


def field(d: dict, key: str, kind: type, what: str, default=_REQUIRED):
    """``d[key]`` checked to be a ``kind`` (``what`` says what was expected); ``default`` when absent, if given."""
    if key not in d:
        if default is _REQUIRED:
            raise ValueError(f"missing key {key!r} (expected {what})")
        return default
    value = d[key]
    if not isinstance(value, kind):
        raise ValueError(f"key {key!r}: expected {what}, found {describe(value)}")
    return value


def describe(value, limit: int = 60) -> str:
    """What was found, for an error message: its JSON-ish type and a short repr."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
             float: "a number", type(None): "null"}
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    name = names.get(type(value), f"a {type(value).__name__}")
    return name if value is None else f"{name} {text}"
