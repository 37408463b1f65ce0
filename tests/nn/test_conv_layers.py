"""Convolution, pooling and upsampling layers against PyTorch's: repr, parameter names and shapes, init,
construction errors, ConvTranspose's output_size, return_indices. (Numerics: the layer rows of the op table.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn as nn

LAYERS = {
    "Conv2d": lambda M: M.Conv2d(1, 6, 5, padding=2),
    "Conv2d_all": lambda M: M.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=2, groups=2, bias=False),
    "Conv2d_same": lambda M: M.Conv2d(2, 2, 3, padding="same"),
    "Conv2d_valid": lambda M: M.Conv2d(2, 2, 3, padding="valid"),
    "Conv1d": lambda M: M.Conv1d(2, 4, 3),
    "Conv1d_same": lambda M: M.Conv1d(2, 4, 3, padding="same", dilation=2),
    "ConvTranspose2d": lambda M: M.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1),
    "ConvTranspose2d_groups": lambda M: M.ConvTranspose2d(4, 6, (3, 2), groups=2, dilation=2, bias=False),
    "ConvTranspose1d": lambda M: M.ConvTranspose1d(3, 4, 3, stride=2, output_padding=1),
    "MaxPool2d": lambda M: M.MaxPool2d(2),
    "MaxPool2d_all": lambda M: M.MaxPool2d((2, 3), stride=1, padding=1, dilation=2, ceil_mode=True),
    "MaxPool1d": lambda M: M.MaxPool1d(3),
    "AvgPool2d": lambda M: M.AvgPool2d(2),
    "AvgPool2d_all": lambda M: M.AvgPool2d(3, 2, 1, True, False, 4),
    "AvgPool1d": lambda M: M.AvgPool1d(3, 2, 1),
    "AdaptiveAvgPool2d": lambda M: M.AdaptiveAvgPool2d((None, 3)),
    "AdaptiveAvgPool1d": lambda M: M.AdaptiveAvgPool1d(3),
    "AdaptiveMaxPool2d": lambda M: M.AdaptiveMaxPool2d(2),
    "AdaptiveMaxPool1d": lambda M: M.AdaptiveMaxPool1d(3, return_indices=True),
    "Upsample_scale": lambda M: M.Upsample(scale_factor=2),
    "Upsample_size": lambda M: M.Upsample(size=(3, 4), mode="bilinear"),
    "Upsample_tuple": lambda M: M.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=True),
    "UpsamplingNearest2d": lambda M: M.UpsamplingNearest2d(scale_factor=2),
    "UpsamplingBilinear2d": lambda M: M.UpsamplingBilinear2d(size=4),
}


@pytest.mark.parametrize("name", LAYERS)
def test_repr_and_parameters_match_torch(torch, name):
    ours, theirs = LAYERS[name](nn), LAYERS[name](torch.nn)
    assert repr(ours) == repr(theirs)
    assert {n: tuple(p.shape) for n, p in ours.named_parameters()} == \
        {n: tuple(p.shape) for n, p in theirs.named_parameters()}
    for attr in ("kernel_size", "stride", "padding", "dilation", "output_padding", "groups", "output_size",
                 "scale_factor", "size", "mode", "align_corners", "ceil_mode", "return_indices"):
        if hasattr(theirs, attr):
            assert getattr(ours, attr) == getattr(theirs, attr), attr


@pytest.mark.parametrize("name", ["Conv2d", "Conv2d_all", "Conv1d", "ConvTranspose2d", "ConvTranspose2d_groups"])
def test_init_is_pytorchs_kaiming_uniform(torch, name):
    """weight and bias uniform in ±1/sqrt(fan_in), with PyTorch's fan_in (the weight's axis 1 times the kernel)."""
    ember.manual_seed(0)
    layer = LAYERS[name](nn)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(LAYERS[name](torch.nn).weight)
    bound = 1.0 / math.sqrt(fan_in)
    for p in layer.parameters():
        values = p.numpy()
        assert np.abs(values).max() <= bound + 1e-7
        if values.size >= 50:
            assert np.abs(values).max() > 0.8 * bound and abs(values.mean()) < 0.2 * bound


def test_dtype_argument_sets_the_parameters_dtype():
    layer = nn.Conv2d(2, 3, 3, dtype=ember.float64)
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    assert nn.ConvTranspose2d(2, 3, 3, dtype="float64").weight.dtype == np.float64


CONSTRUCTION_ERRORS = [
    (lambda M: M.Conv2d(3, 4, 3, groups=2), ValueError, "divisible by groups"),
    (lambda M: M.Conv2d(4, 3, 3, groups=2), ValueError, "divisible by groups"),
    (lambda M: M.Conv2d(4, 4, 3, groups=0), ValueError, "groups"),
    (lambda M: M.Conv2d(2, 2, 3, padding="full"), ValueError, "padding"),
    (lambda M: M.Conv2d(2, 2, 3, stride=2, padding="same"), ValueError, "strided"),
    (lambda M: M.Conv1d(2, 2, 3, stride=2, padding="same"), ValueError, "strided"),
    (lambda M: M.Conv2d(2, 2, 3, padding_mode="mirror"), ValueError, "padding_mode"),
    (lambda M: M.ConvTranspose2d(2, 2, 3, padding_mode="reflect"), ValueError, "zeros"),
]


@pytest.mark.parametrize("build,exc,text", CONSTRUCTION_ERRORS)
def test_construction_errors_like_torch(torch, build, exc, text):
    with pytest.raises(Exception):  # noqa: B017 - PyTorch refuses it too
        build(torch.nn)
    with pytest.raises(exc, match=text):
        build(nn)


@pytest.mark.parametrize("build,exc,text", [
    (lambda: nn.Conv2d(2, 2, 3, padding_mode="reflect"), ValueError, "only 'zeros'"),
    (lambda: nn.Conv2d(2, 2, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(2, 2, 3, stride=0), ValueError, "stride"),
    (lambda: nn.Conv2d(2, 2, 3, padding=-1), ValueError, "padding"),
    (lambda: nn.Conv2d(2, 2, 3, dilation=(1, 0)), ValueError, "dilation"),
    (lambda: nn.Conv2d(2, 2, (3, 3, 3)), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(0, 2, 3), ValueError, "positive"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same"), TypeError, "padding"),
])
def test_construction_errors_ember_raises_early(build, exc, text):
    """Refused at construction (PyTorch refuses these at the first forward, or, for other padding modes,
    implements them; ember says it only has zero padding)."""
    with pytest.raises(exc, match=text):
        build()


@pytest.mark.parametrize("shape,output_size", [
    ((2, 3, 4, 5), (7, 9)),
    ((2, 3, 4, 5), (8, 10)),
    ((2, 3, 4, 5), (2, 4, 8, 9)),
    ((3, 4, 5), (7, 10)),
    ((3, 4, 5), (4, 8, 9)),
])
def test_conv_transpose_output_size_picks_the_output_padding_like_torch(torch, shape, output_size):
    ember.manual_seed(0)
    layer = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)
    twin = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1).double()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().astype(np.float64)) for k, v in layer.state_dict().items()})
    layer.double()
    x = np.random.default_rng(0).standard_normal(shape)
    ours = layer(ember.tensor(x), output_size=output_size).numpy()
    ref = twin(torch.from_numpy(x), output_size=output_size).detach().numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("output_size", [(8, 8), (11, 9), (9,)])
def test_conv_transpose_refuses_an_unreachable_output_size(torch, output_size):
    x = np.zeros((1, 3, 4, 5))
    with pytest.raises(Exception):  # noqa: B017 - PyTorch refuses it too
        torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)(torch.from_numpy(x).float(), output_size=output_size)
    with pytest.raises(ValueError, match="output_size|output size"):
        nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)(ember.tensor(x, dtype=ember.float32), output_size=output_size)


@pytest.mark.parametrize("name,shape", [("MaxPool2d_all", (2, 3, 6, 7)), ("AdaptiveMaxPool1d", (2, 3, 7))])
def test_return_indices_layers_match_torch(torch, name, shape):
    ours, theirs = LAYERS[name](nn), LAYERS[name](torch.nn)
    if name == "MaxPool2d_all":
        ours.return_indices = theirs.return_indices = True
    x = np.random.default_rng(0).integers(0, 3, size=shape).astype(np.float64)
    (out, idx), (ref, ref_idx) = ours(ember.tensor(x)), theirs(torch.from_numpy(x))
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())


def test_lenet_layers_keep_their_shapes_and_names():
    """LeNet-5 and the ELM features build on these layers unchanged."""
    model = ember.models.LeNet5()
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes["conv1.weight"] == (6, 1, 5, 5) and shapes["conv2.weight"] == (16, 6, 5, 5)
    assert model(ember.zeros(2, 1, 28, 28)).shape == (2, 10)
