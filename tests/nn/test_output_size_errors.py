"""A convolution or pooling whose output would be empty is an error, as in PyTorch (ember issue 11, case 10).

``MaxPool2d(5)`` on a 4x4 input must raise, not return a (N, C, 0, 0) tensor. Over a grid of input
sizes, kernels, strides, paddings, dilations and ceil_mode, ember and PyTorch must both raise or
both succeed with the same output shape; every refusal names the op, the input size, each setting
and the computed output size (checked against the output-size formulas of PyTorch's documentation).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn

SIZES = (1, 2, 3, 4, 5, 7)
KERNELS = (1, 2, 3, 4, 5, 6)
STRIDES = (1, 2, 3)
PADDINGS = (0, 1, 2, 3)
DILATIONS = (1, 2, 3)


def pool_out(n, k, s, p, d, ceil_mode) -> int:
    """PyTorch's MaxPool/AvgPool docs: floor or ceil of (n + 2p - d(k-1) - 1)/s + 1; a last window that would
    start in the right padding is dropped."""
    steps = (n + 2 * p - d * (k - 1) - 1) / s
    out = (math.ceil(steps) if ceil_mode else math.floor(steps)) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def conv_out(n, k, s, p, d) -> int:
    """PyTorch's Conv docs: floor((n + 2p - d(k-1) - 1)/s + 1)."""
    return math.floor((n + 2 * p - d * (k - 1) - 1) / s + 1)


def conv_transpose_out(n, k, s, p, d, output_padding) -> int:
    """PyTorch's ConvTranspose docs: (n - 1)s - 2p + d(k-1) + output_padding + 1."""
    return (n - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


def outcome(fn):
    """The output shape, or the exception raised."""
    try:
        return tuple(fn().shape)
    except (ValueError, RuntimeError, IndexError, TypeError) as exc:
        return exc


def assert_same_outcomes(cases):
    """Each (label, ember call, torch call) both raise, or both give the same shape; ember raises ValueError."""
    mismatches = []
    for label, ours, theirs in cases:
        a, b = outcome(ours), outcome(theirs)
        if isinstance(a, Exception) and not isinstance(a, ValueError):
            mismatches.append((label, f"ember raised {type(a).__name__}: {a}"))
        elif isinstance(a, Exception) != isinstance(b, Exception) or (isinstance(a, tuple) and a != b):
            mismatches.append((label, f"ember {a!r}", f"torch {b!r}"))
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ, e.g. {mismatches[:5]}"


def both(torch, shape):
    x = np.random.default_rng(sum(shape)).standard_normal(shape)
    return ember.tensor(x), torch.tensor(x)


# -- pooling ----------------------------------------------------------------------------------------
FUNCTIONS = {"MaxPool1d": "max_pool1d", "MaxPool2d": "max_pool2d", "AvgPool1d": "avg_pool1d", "AvgPool2d": "avg_pool2d"}


@pytest.mark.parametrize("op", ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"])
def test_pooling_raises_exactly_when_pytorch_does_and_agrees_on_shapes(torch, op):
    spatial = int(op[-2])
    ours_fn, theirs_fn = getattr(F, op), getattr(torch.nn.functional, op)
    dilations = DILATIONS if op.startswith("max") else (1,)
    cases = []
    for n, k, s, p, d, ceil_mode in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, dilations, (False, True)):
        x, tx = both(torch, (2, 3) + (n,) * spatial)
        args = (k, s, p, d, ceil_mode) if op.startswith("max") else (k, s, p, ceil_mode)
        cases.append(((n, k, s, p, d, ceil_mode), lambda x=x, a=args: ours_fn(x, *a),
                      lambda tx=tx, a=args: theirs_fn(tx, *a)))
    assert_same_outcomes(cases)


@pytest.mark.parametrize("layer", ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"])
def test_pooling_layers_refuse_a_kernel_larger_than_the_input(torch, layer):
    spatial = int(layer[-2])
    x, tx = both(torch, (1, 1) + (4,) * spatial)
    with pytest.raises(RuntimeError, match="(?i)output size"):  # the reference refuses
        getattr(torch.nn, layer)(5)(tx)
    with pytest.raises(ValueError) as info:
        getattr(nn, layer)(5)(x)
    assert_names_the_geometry(str(info.value), FUNCTIONS[layer], (4,) * spatial,
                              (pool_out(4, 5, 5, 0, 1, False),) * spatial,
                              kernel=(5,) * spatial, stride=(5,) * spatial, padding=(0,) * spatial)


@pytest.mark.parametrize("n,k,s,p,d,ceil_mode", [(4, 5, 5, 0, 1, False), (3, 3, 1, 0, 2, False),
                                                 (1, 4, 1, 1, 1, True), (1, 4, 1, 1, 1, False)])
def test_a_pooling_refusal_names_the_input_the_settings_and_the_output_size(n, k, s, p, d, ceil_mode):
    expected = pool_out(n, k, s, p, d, ceil_mode)
    assert expected < 1
    with pytest.raises(ValueError) as info:
        F.max_pool2d(ember.zeros(1, 1, n, n), k, s, p, d, ceil_mode)
    assert_names_the_geometry(str(info.value), "max_pool2d", (n, n), (expected, expected), kernel=(k, k),
                              stride=(s, s), padding=(p, p), dilation=(d, d))


def test_ceil_mode_keeps_a_window_that_starts_inside_the_input(torch):
    x, tx = both(torch, (1, 1, 4, 4))
    reference = torch.nn.functional.max_pool2d(tx, 5, ceil_mode=True)
    assert F.max_pool2d(x, 5, ceil_mode=True).shape == tuple(reference.shape) == (1, 1, 1, 1)


@pytest.mark.parametrize("op", ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"])
def test_pooling_padding_beyond_half_the_kernel_is_refused_as_pytorch_does(torch, op):
    spatial = int(op[-2])
    x, tx = both(torch, (1, 1) + (8,) * spatial)
    with pytest.raises(RuntimeError, match="half"):
        getattr(torch.nn.functional, op)(tx, 3, 1, 2)
    with pytest.raises(ValueError, match=rf"{op}: padding .* must be at most half the kernel size"):
        getattr(F, op)(x, 3, 1, 2)
    assert getattr(F, op)(x, 3, 1, 1).shape == tuple(getattr(torch.nn.functional, op)(tx, 3, 1, 1).shape)


# -- convolution ------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note on a copy it makes
@pytest.mark.parametrize("spatial", [1, 2])
def test_convolution_raises_exactly_when_pytorch_does_and_agrees_on_shapes(torch, spatial):
    ours_fn, theirs_fn = (F.conv1d, torch.nn.functional.conv1d) if spatial == 1 else (F.conv2d,
                                                                                     torch.nn.functional.conv2d)
    cases = []
    for n, k, s, p, d in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS + ("valid", "same"), DILATIONS):
        if p == "same" and s > 1:
            continue  # refused by both for another reason
        x, tx = both(torch, (1, 2) + (n,) * spatial)
        w, tw = both(torch, (3, 2) + (k,) * spatial)
        cases.append(((n, k, s, p, d), lambda x=x, w=w, a=(s, p, d): ours_fn(x, w, None, *a),
                      lambda tx=tx, tw=tw, a=(s, p, d): theirs_fn(tx, tw, None, *a)))
    assert_same_outcomes(cases)


@pytest.mark.parametrize("layer", ["Conv1d", "Conv2d"])
def test_convolution_layers_refuse_a_kernel_larger_than_the_input(torch, layer):
    spatial = int(layer[-2])
    x, tx = both(torch, (1, 1) + (4,) * spatial)
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        getattr(torch.nn, layer)(1, 1, 5).double()(tx)
    with pytest.raises(ValueError) as info:
        getattr(nn, layer)(1, 1, 5)(x.float())
    assert_names_the_geometry(str(info.value), f"conv{spatial}d", (4,) * spatial, (conv_out(4, 5, 1, 0, 1),) * spatial,
                              kernel=(5,) * spatial, stride=(1,) * spatial, padding=(0,) * spatial,
                              dilation=(1,) * spatial)
    assert "smaller than the kernel" in str(info.value)


@pytest.mark.parametrize("n,k,s,p,d", [(2, 3, 1, 0, 1), (4, 2, 2, 0, 4), (3, 5, 3, 0, 1), (1, 6, 1, 2, 1)])
def test_a_convolution_refusal_names_the_input_the_settings_and_the_output_size(n, k, s, p, d):
    expected = conv_out(n, k, s, p, d)
    assert expected < 1
    with pytest.raises(ValueError) as info:
        F.conv2d(ember.zeros(1, 1, n, n), ember.zeros(1, 1, k, k), None, s, p, d)
    assert_names_the_geometry(str(info.value), "conv2d", (n, n), (expected, expected), kernel=(k, k), stride=(s, s),
                              padding=(p, p), dilation=(d, d))


@pytest.mark.parametrize("spatial", [1, 2])
def test_transposed_convolution_agrees_with_pytorch_and_never_returns_an_empty_output(torch, spatial):
    """PyTorch's own transposed convolutions disagree on an output of size 0: conv_transpose1d (and 2-D with
    some kernels) raise "Output size is too small", other 2-D kernels return an empty tensor. ember always
    refuses; everywhere else the two agree."""
    ours_fn = F.conv_transpose1d if spatial == 1 else F.conv_transpose2d
    theirs_fn = torch.nn.functional.conv_transpose1d if spatial == 1 else torch.nn.functional.conv_transpose2d
    cases, empty = [], []
    for n, k, s, p, d, op in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS, (0, 1, 2)):
        x, tx = both(torch, (1, 2) + (n,) * spatial)
        w, tw = both(torch, (2, 3) + (k,) * spatial)
        ours = lambda x=x, w=w, a=(s, p, op, 1, d): ours_fn(x, w, None, *a)  # noqa: E731
        theirs = lambda tx=tx, tw=tw, a=(s, p, op, 1, d): theirs_fn(tx, tw, None, *a)  # noqa: E731
        reference = outcome(theirs)
        if isinstance(reference, tuple) and 0 in reference:
            empty.append(((n, k, s, p, d, op), ours))
        else:
            cases.append(((n, k, s, p, d, op), ours, theirs))
    assert_same_outcomes(cases)
    for label, ours in empty:
        assert isinstance(outcome(ours), ValueError), f"{label}: ember returned an empty output"


def test_a_transposed_convolution_refusal_names_the_settings_and_the_output_size():
    expected = conv_transpose_out(1, 2, 1, 1, 1, 0)
    assert expected < 1
    with pytest.raises(ValueError) as info:
        nn.ConvTranspose2d(1, 1, 2, padding=1)(ember.zeros(1, 1, 1, 1))
    assert_names_the_geometry(str(info.value), "conv_transpose2d", (1, 1), (expected, expected), kernel=(2, 2),
                              stride=(1, 1), padding=(1, 1), dilation=(1, 1), output_padding=(0, 0))


def test_every_output_size_check_goes_through_one_helper(monkeypatch):
    """The pooling, convolution and transposed-convolution checks are one function: replacing it silences all."""
    from ember.nn.functional import conv as conv_module

    seen = []
    monkeypatch.setattr(conv_module, "_check_output_size", lambda name, *args, **kwargs: seen.append(name))
    for call in (lambda: F.max_pool2d(ember.zeros(1, 1, 4, 4), 5), lambda: F.avg_pool1d(ember.zeros(1, 1, 4), 5),
                 lambda: F.conv2d(ember.zeros(1, 1, 4, 4), ember.zeros(1, 1, 5, 5)),
                 lambda: F.conv_transpose2d(ember.zeros(1, 1, 1, 1), ember.zeros(1, 1, 1, 1), padding=1)):
        with contextlib.suppress(Exception):  # unchecked, the op itself may fail in any way
            call()
    assert seen == ["max_pool2d", "avg_pool1d", "conv2d", "conv_transpose2d"]


def assert_names_the_geometry(message: str, op: str, sizes: tuple, out: tuple, **settings):
    """The message starts with the op and names the input size, each setting and the computed output size."""
    assert message.startswith(f"{op}: "), message
    assert f"input of size {sizes}" in message, message
    assert f"output of size {out}" in message, message
    for key, value in settings.items():
        assert re.search(rf"\b{key} {re.escape(str(value))}", message), (key, value, message)
