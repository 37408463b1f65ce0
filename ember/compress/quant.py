"""int8 quantization: post-training (PTQ), fake quantization for quantization-aware training (QAT), int8 layers.

Weights are quantized symmetrically per output channel, ``q = round(w / s_c)`` in [-127, 127] with
``s_c = max|w_c| / 127``: zero is exact, and each channel uses its own full range (one large row does not
crush the others' resolution). Activations (a layer's input) are quantized per tensor and asymmetrically
into [0, 255] with a zero point, from a range that observers measure on a few calibration batches: the
running min/max (``"minmax"``) or the mean over batches of a low and a high percentile (``"percentile"``,
which ignores rare outliers). The formulas are PyTorch's (``MinMaxObserver``, ``fake_quantize_*``), and the
tests compare with it.

**Execution: int8 storage, float32 arithmetic.** A quantized layer keeps int8 weights and float32 scales and,
at each forward, dequantizes them (``q.astype(float32) * s``) and runs the float32 GEMM. NumPy has no integer
BLAS: an int8 matmul computed through int32 measured 25-55x slower than the float32 one here (784->256 layer,
batch 64: 10.6 ms against 0.42 ms; batch 1000: 211 ms against 3.8 ms). The dequantization costs one pass over
the weights, 0.15-0.25 ms for the 784x256 layer: about 5% of a batch of 1000, more for small batches (where the
whole layer takes well under a millisecond). Scaling the outputs instead, ``(x @ q.astype(float32)ᵀ) · s``,
measured faster up to batch 64 (0.38 against 0.50 ms) but slower at 1000 (3.6 against 3.3 ms) and fits only a
Linear; one dequantizing path serves every layer kind. Embeddings dequantize only the rows looked up. A layer
with a quantized input fake-quantizes it (quantize, then dequantize) before its GEMM, which gives the values an
int8 engine would see. The checkpoint holds the int8 tensors, so it is ~4x smaller than float32; in memory only
one layer's dequantized weights exist at a time.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .. import backend, nn
from ..autograd import Function, no_grad
from ..nn import functional as F
from ..tensor import Tensor, apply

WEIGHT_QMAX = 127  # weights: symmetric int8 in [-127, 127]
ACT_QMIN, ACT_QMAX = 0, 255  # activations: asymmetric, unsigned 8 bits with a zero point
EPS = float(np.finfo(np.float32).eps)  # the smallest scale (PyTorch's): an all-zero tensor quantizes to 0, no 0/0
QAT_AVERAGING = 0.01  # QAT's moving-average observer: the weight of each new batch's min/max (PyTorch's default)

__all__ = [
    "FakeQuantize", "MinMaxObserver", "OBSERVERS", "PercentileObserver", "QATConv2d", "QATLinear", "QUANTIZED_TYPES",
    "QuantizedConv2d", "QuantizedEmbedding", "QuantizedKANLinear", "QuantizedLinear", "activation_qparams",
    "channel_scales", "dequantize_per_channel", "dequantize_per_tensor", "fake_quantize", "fake_quantize_weight",
    "prepare_qat", "quantize_model", "quantize_per_channel", "quantize_per_tensor", "replace_module",
]


# ----------------------------------------------------------------------------- the arithmetic


def _channel_view(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """Per-channel values (C,) shaped to broadcast along ``axis`` of an ``ndim``-d tensor."""
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def channel_scales(w: np.ndarray, axis: int = 0) -> np.ndarray:
    """Symmetric int8 scales, one per channel along ``axis``: max|w| / 127 (at least EPS), float32."""
    w = np.asarray(w)
    if not 0 <= axis < w.ndim:
        raise ValueError(f"channel_scales: axis {axis} is out of range for a weight of shape {w.shape}")
    others = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.abs(w).max(axis=others) if others else np.abs(w)
    return np.maximum(amax.astype(np.float64) / WEIGHT_QMAX, EPS).astype(np.float32)


def quantize_per_channel(w: np.ndarray, scales: np.ndarray, axis: int = 0) -> np.ndarray:
    """int8 ``round(w / s)`` (half to even, as PyTorch), clipped to [-127, 127]; computed in float64."""
    s = _channel_view(np.asarray(scales, dtype=np.float64), w.ndim, axis)
    q = np.rint(np.asarray(w, dtype=np.float64) / s)
    return np.clip(q, -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)


def dequantize_per_channel(q, scales, axis: int = 0):
    """float32 ``q · s`` (NumPy or CuPy arrays): the weights a quantized layer computes with."""
    w = q.astype(np.float32)
    w *= _channel_view(scales, q.ndim, axis)
    return w


def activation_qparams(lo: float, hi: float, quant_min: int = ACT_QMIN, quant_max: int = ACT_QMAX
                       ) -> tuple[float, int]:
    """(scale, zero_point) mapping [lo, hi] onto [quant_min, quant_max] (PyTorch's ``MinMaxObserver``).

    The range is widened to contain 0, so that zero (padding, ReLU's zeros) is represented exactly; the
    scale is at least EPS, so an all-zero input gives a finite scale.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"activation_qparams: the observed range [{lo}, {hi}] is not finite (NaN or inf inputs?)")
    scale = float(np.float32(max((hi - lo) / (quant_max - quant_min), EPS)))
    zero_point = quant_min - int(np.rint(lo / scale))
    return scale, int(min(max(zero_point, quant_min), quant_max))


def quantize_per_tensor(x, scale: float, zero_point: int, quant_min: int = ACT_QMIN, quant_max: int = ACT_QMAX):
    """Integer codes ``clip(round(x / scale) + zero_point)`` (int32), with PyTorch's x·(1/scale) rounding."""
    xp = backend.device_of(x).xp
    inverse = np.float32(1.0) / np.float32(scale)
    return xp.clip(xp.rint(x * inverse) + zero_point, quant_min, quant_max).astype(np.int32)


def dequantize_per_tensor(q, scale: float, zero_point: int, dtype=np.float32):
    return ((q - zero_point) * np.float32(scale)).astype(dtype, copy=False)


# ----------------------------------------------------------------------------- observers


class MinMaxObserver:
    """The running min and max of everything observed."""

    def __init__(self):
        self.lo, self.hi, self.batches = math.inf, -math.inf, 0

    def observe(self, x) -> None:
        if x.size:  # reduced where the array lives (a GPU's), only two numbers come back
            self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        self.batches += 1

    def range(self) -> tuple[float, float]:
        if self.lo > self.hi:
            raise ValueError("observer: no values observed (an empty calibration set, or a layer it never reached)")
        return self.lo, self.hi

    def qparams(self) -> tuple[float, int]:
        return activation_qparams(*self.range())


class PercentileObserver(MinMaxObserver):
    """The (100 - p)-th and p-th percentiles of each batch, averaged over the batches: a range that leaves out
    the rare extreme values, which would otherwise spend most of the 256 levels on a few outliers."""

    def __init__(self, percentile: float = 99.99):
        super().__init__()
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"PercentileObserver: percentile must be in (50, 100], got {percentile}")
        self.percentile = float(percentile)
        self.lows: list[float] = []
        self.highs: list[float] = []

    def observe(self, x) -> None:
        x = backend.to_device(x, backend.CPU)
        if x.size:
            lo, hi = np.percentile(x, [100.0 - self.percentile, self.percentile])
            self.lows.append(float(lo))
            self.highs.append(float(hi))
        self.batches += 1

    def range(self) -> tuple[float, float]:
        if not self.lows:
            raise ValueError("observer: no values observed (an empty calibration set, or a layer it never reached)")
        return float(np.mean(self.lows)), float(np.mean(self.highs))


OBSERVERS = {"minmax": MinMaxObserver, "percentile": PercentileObserver}


def make_observer(observer: str, percentile: float = 99.99) -> MinMaxObserver:
    if observer not in OBSERVERS:
        raise ValueError(f"unknown observer {observer!r}; choose one of {', '.join(OBSERVERS)}")
    return PercentileObserver(percentile) if observer == "percentile" else MinMaxObserver()


# ----------------------------------------------------------------------------- fake quantization


class FakeQuantize(Function):
    """Quantize then dequantize, with the straight-through gradient (PyTorch's ``fake_quantize_per_*_affine``).

    Forward: ``q = round(x · (1/s)) + z``; out = ``(clip(q, qmin, qmax) - z) · s``. Backward: the gradient
    passes unchanged where q fell inside [qmin, qmax] and is 0 where it was clipped (rounding is treated as the
    identity, the clipping is not). ``scale`` and ``zero_point`` are arrays that broadcast against x (one value,
    or one per channel), in x's dtype.
    """

    saves = ()

    def forward(ctx, x, scale, zero_point, quant_min: int, quant_max: int):
        xp = ctx.xp
        q = x * (1 / scale)  # one new array, then in place: an input batch can be large
        xp.rint(q, out=q)
        q += zero_point
        if ctx.needs_input_grad is not None:
            ctx.inside = (q >= quant_min) & (q <= quant_max)
        xp.clip(q, quant_min, quant_max, out=q)
        q -= zero_point
        q *= scale
        return q

    def backward(ctx, g):
        return g * ctx.inside


def fake_quantize(x: Tensor, scale, zero_point, quant_min: int = ACT_QMIN, quant_max: int = ACT_QMAX,
                  axis: int | None = None) -> Tensor:
    """Fake-quantize ``x`` per tensor (scalar ``scale``/``zero_point``) or per channel along ``axis`` (arrays of
    one value per channel); differentiable in x by the straight-through rule (see ``FakeQuantize``)."""
    if quant_min >= quant_max:
        raise ValueError(f"fake_quantize: need quant_min < quant_max, got [{quant_min}, {quant_max}]")
    if x.dtype.kind != "f":
        raise TypeError(f"fake_quantize: expected a floating-point tensor, got {x.dtype}")
    xp = backend.device_of(x.data).xp
    scale, zero_point = xp.asarray(scale, dtype=x.dtype), xp.asarray(zero_point, dtype=x.dtype)
    if axis is not None:
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"fake_quantize: axis {axis} is out of range for a tensor of shape {x.shape}")
        axis %= x.ndim
        if scale.shape != (x.shape[axis],) or zero_point.shape != (x.shape[axis],):
            raise ValueError(f"fake_quantize: per-channel scale and zero_point need shape ({x.shape[axis]},) for "
                             f"axis {axis} of {x.shape}, got {scale.shape} and {zero_point.shape}")
        scale, zero_point = _channel_view(scale, x.ndim, axis), _channel_view(zero_point, x.ndim, axis)
    elif scale.ndim or zero_point.ndim:
        raise ValueError(f"fake_quantize: per-tensor quantization takes one scale and zero point, got shapes "
                         f"{scale.shape} and {zero_point.shape} (pass axis= for per-channel values)")
    if bool((scale <= 0).any()):
        raise ValueError("fake_quantize: scales must be positive")
    return apply(FakeQuantize, x, scale=scale, zero_point=zero_point, quant_min=int(quant_min),
                 quant_max=int(quant_max))


def fake_quantize_weight(w: Tensor, axis: int = 0) -> Tensor:
    """``w`` fake-quantized as PTQ stores it (symmetric int8 per channel); the gradient is the identity (no
    value is clipped: the scales come from the tensor's own max) and does not flow into the scales."""
    scales = channel_scales(backend.to_device(w.data, backend.CPU), axis)
    return fake_quantize(w, scales, np.zeros_like(scales), -WEIGHT_QMAX, WEIGHT_QMAX, axis=axis)


# ----------------------------------------------------------------------------- int8 layers


def _register_int8(module: nn.Module, name: str, weight: np.ndarray | None, shared=None) -> None:
    """Buffers ``{name}_q`` (int8) and ``{name}_scale`` (float32, per output channel) for a float ``weight``.

    ``shared``: the (q, scale) tensors of another layer quantizing the same parameter (a tied embedding and
    output head): reused as they are and not saved a second time (non-persistent here)."""
    if shared is not None:
        q, scale = shared
        module.register_buffer(f"{name}_q", q, persistent=False)
        module.register_buffer(f"{name}_scale", scale, persistent=False)
        return
    host = backend.to_device(weight, backend.CPU)
    scales = channel_scales(host, 0)
    device = backend.device_of(weight)
    module.register_buffer(f"{name}_q", Tensor(backend.to_device(quantize_per_channel(host, scales, 0), device)))
    module.register_buffer(f"{name}_scale", Tensor(backend.to_device(scales, device)))


def _dequantized(module: nn.Module, name: str):
    return dequantize_per_channel(getattr(module, f"{name}_q").data, getattr(module, f"{name}_scale").data)


class _QuantizedInput:
    """What the int8 layers that take float inputs share: optional per-tensor quantization of that input."""

    def set_input_qparams(self, scale: float, zero_point: int) -> None:
        """Quantize this layer's input with (scale, zero_point) from now on (0-d buffers, saved with the layer)."""
        device = backend.device_of(self._first_buffer().data)
        self.register_buffer("input_scale", Tensor(backend.to_device(np.array(scale, np.float32), device)))
        self.register_buffer("input_zero_point", Tensor(backend.to_device(np.array(zero_point, np.int32), device)))

    def _first_buffer(self) -> Tensor:
        return next(iter(self.buffers()))

    @property
    def input_quantized(self) -> bool:
        return getattr(self, "input_scale", None) is not None

    def quantize_input(self, x: Tensor) -> Tensor:
        if not self.input_quantized:
            return x
        return fake_quantize(x, self.input_scale.data, self.input_zero_point.data)

    def _take_weights(self, layer, shared=None):
        """The float layer's weight as int8 codes and scales, its bias as it is."""
        _register_int8(self, "weight", layer.weight.data, shared)
        self.register_parameter("bias", None if layer.bias is None else nn.Parameter(layer.bias.data.copy()))
        return self

    @property
    def weight(self) -> Tensor:
        return Tensor(_dequantized(self, "weight"))


class QuantizedLinear(_QuantizedInput, nn.Module):
    """``Linear`` with int8 weights and per-output-channel scales (bias float32); inference only.

    Buffers: ``weight_q`` (out, in) int8, ``weight_scale`` (out,) float32; with a quantized input also
    ``input_scale`` and ``input_zero_point``. ``weight`` is the dequantized float32 matrix (a new array at each
    access), for code that reads a layer's weights directly: GPT's cached decoding does, and so computes with
    the int8 weights but a float input (quantize a GPT's weights only).
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("input_scale", None)
        self.register_buffer("input_zero_point", None)

    @classmethod
    def from_float(cls, layer: nn.Linear, shared=None) -> QuantizedLinear:
        return cls(layer.in_features, layer.out_features)._take_weights(layer, shared)

    def forward(self, x):
        return F.linear(self.quantize_input(x), self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"int8 per-channel{', quantized input' if self.input_quantized else ''}")


class QuantizedConv2d(_QuantizedInput, nn.Module):
    """``Conv2d`` with int8 weights, one scale per output channel; stride, padding, dilation, groups as the
    float layer's. Buffers as ``QuantizedLinear``'s (``weight_q`` is (O, C/groups, kh, kw))."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            setattr(self, attr, getattr(conv, attr))
        self.register_buffer("input_scale", None)
        self.register_buffer("input_zero_point", None)

    @classmethod
    def from_float(cls, layer: nn.Conv2d, shared=None) -> QuantizedConv2d:
        return cls(layer)._take_weights(layer, shared)

    def forward(self, x):
        return F.conv2d(self.quantize_input(x), self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, int8 per-channel{', quantized input' if self.input_quantized else ''}")


class QuantizedEmbedding(nn.Module):
    """``Embedding`` with an int8 table and one scale per row: a lookup dequantizes only the rows it reads
    (bit for bit the rows of the dequantized table)."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim

    @classmethod
    def from_float(cls, layer: nn.Embedding, shared=None) -> QuantizedEmbedding:
        new = cls(layer.num_embeddings, layer.embedding_dim)
        _register_int8(new, "weight", layer.weight.data, shared)
        return new

    @property
    def weight(self) -> Tensor:
        return Tensor(_dequantized(self, "weight"))

    def forward(self, ids):
        q, scale = self.weight_q.data, self.weight_scale.data
        idx = ids.data if isinstance(ids, Tensor) else backend.device_of(q).xp.asarray(ids)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"QuantizedEmbedding: indices must be integers, got {idx.dtype}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_embeddings):
            raise IndexError(f"QuantizedEmbedding: index out of range [0, {self.num_embeddings}) "
                             f"(min {int(idx.min())}, max {int(idx.max())})")
        rows = q[idx].astype(np.float32)
        rows *= scale[idx][..., None]
        return Tensor(rows)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 per-row"


class QuantizedKANLinear(_QuantizedInput, nn.Module):
    """``KANLinear`` with int8 coefficients: the base weights w_b (out, in) and the spline coefficients c·w_s
    (out, in, G+k) (the spline scaler and an edge mask folded in), each with one scale per output neuron.
    The knots stay float32 (they place the splines; they are few)."""

    def __init__(self, layer: nn.KANLinear):
        super().__init__()
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self.grid_size, self.spline_order, self.uniform_grid = layer.grid_size, layer.spline_order, layer.uniform_grid
        self.register_buffer("grid", Tensor(layer.grid.data.copy()))
        self.register_buffer("input_scale", None)
        self.register_buffer("input_zero_point", None)

    @classmethod
    def from_float(cls, layer: nn.KANLinear, shared=None) -> QuantizedKANLinear:
        new = cls(layer)
        _register_int8(new, "base_weight", layer.effective_base_weight())
        _register_int8(new, "spline_weight", layer.scaled_spline_weight())
        return new

    def _after_state_loaded(self) -> None:
        from ..ops import bspline as BS

        self.uniform_grid = BS.is_uniform(self.grid.numpy())

    def forward(self, x):
        base, spline = Tensor(_dequantized(self, "base_weight")), Tensor(_dequantized(self, "spline_weight"))
        return F.kan_linear(self.quantize_input(x), base, spline, None, self.grid, self.spline_order,
                            self.uniform_grid)

    def extra_repr(self) -> str:
        inputs = ", quantized input" if self.input_quantized else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, grid_size={self.grid_size}, "
                f"spline_order={self.spline_order}, int8 per-neuron{inputs}")


# ----------------------------------------------------------------------------- quantization-aware training


class _QATInput:
    """A moving-average min/max of the layer's input (in training mode), and its fake quantization."""

    def _init_observer(self) -> None:
        self.register_buffer("input_min", Tensor(np.array(np.nan, np.float32)))
        self.register_buffer("input_max", Tensor(np.array(np.nan, np.float32)))

    def input_range(self) -> tuple[float, float] | None:
        lo, hi = float(self.input_min.data), float(self.input_max.data)
        return None if math.isnan(lo) else (lo, hi)

    def fake_quantize_input(self, x: Tensor) -> Tensor:
        if self.training:
            lo, hi = float(x.data.min()), float(x.data.max())
            seen = self.input_range()
            if seen is not None:
                lo = seen[0] + QAT_AVERAGING * (lo - seen[0])
                hi = seen[1] + QAT_AVERAGING * (hi - seen[1])
            self.input_min.data[...] = lo
            self.input_max.data[...] = hi
        seen = self.input_range()
        if seen is None:  # evaluated before any training step: nothing observed yet
            return x
        return fake_quantize(x, *activation_qparams(*seen))


class QATLinear(_QATInput, nn.Linear):
    """A ``Linear`` that trains through its int8 rounding: fake-quantized weights (per channel) and input (per
    tensor, from a moving-average range), gradients by the straight-through rule. ``quantize_model`` turns it
    into a ``QuantizedLinear`` with the range it learned."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self._init_observer()

    def forward(self, x):
        return F.linear(self.fake_quantize_input(x), fake_quantize_weight(self.weight), self.bias)


class QATConv2d(_QATInput, nn.Conv2d):
    """``Conv2d`` trained through its int8 rounding, as ``QATLinear``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_observer()

    def forward(self, x):
        return F.conv2d(self.fake_quantize_input(x), fake_quantize_weight(self.weight), self.bias, self.stride,
                        self.padding, self.dilation, self.groups)


def _qat_twin(layer):
    """A QAT layer that shares ``layer``'s Parameter objects (an optimizer over the old ones keeps working)."""
    if isinstance(layer, nn.Linear):
        twin = QATLinear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    else:
        twin = QATConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         layer.dilation, layer.groups, bias=layer.bias is not None)
    twin.weight = layer.weight
    twin.register_parameter("bias", layer.bias)
    return twin.train(layer.training)


def prepare_qat(model: nn.Module) -> nn.Module:
    """Swap every Linear and Conv2d of ``model`` (in place) for its QAT twin, keeping the same parameters;
    train as usual, then ``quantize_model`` (no calibration needed: the twins observed their inputs)."""
    _check_float32(model, "prepare_qat")
    for name, module in list(model.named_modules()):
        if type(module) in (nn.Linear, nn.Conv2d):
            replace_module(model, name, _qat_twin(module))
    return model


# ----------------------------------------------------------------------------- whole models


QUANTIZED_TYPES = {nn.Linear: QuantizedLinear, nn.Conv2d: QuantizedConv2d, nn.Embedding: QuantizedEmbedding,
                   nn.KANLinear: QuantizedKANLinear, QATLinear: QuantizedLinear, QATConv2d: QuantizedConv2d}


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the sub-module ``name`` (dotted) is, keeping its place among its siblings (a
    Sequential runs its children in registration order)."""
    parent_name, _, child = name.rpartition(".")
    parent = model
    for part in filter(None, parent_name.split(".")):
        parent = getattr(parent, part)
    if child not in parent._module_names:
        raise ValueError(f"replace_module: {type(parent).__name__} has no sub-module {child!r} (at {name!r})")
    object.__setattr__(parent, child, new)  # the name stays registered where it was


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every layer ``quantize_model`` converts, in the model's order."""
    return [(name, m) for name, m in model.named_modules() if type(m) in QUANTIZED_TYPES]


def _check_float32(model: nn.Module, what: str) -> None:
    dtypes = {str(p.dtype) for p in model.parameters()}
    if dtypes - {"float32"}:
        raise TypeError(f"{what}: int8 quantization computes in float32, but the model holds "
                        f"{', '.join(sorted(dtypes))} parameters; convert it with model.float() first")


def _model_input(batch):
    """The model's input in a calibration batch: ``x`` of an (x, y) pair, as a Tensor."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


@no_grad()
def calibrate(model: nn.Module, batches, names: list[str], observer: str = "minmax",
              percentile: float = 99.99) -> dict[str, tuple[float, int]]:
    """Run ``batches`` through ``model`` (eval mode) and return each named layer's input (scale, zero_point)."""
    modules = dict(model.named_modules())
    observers = {name: make_observer(observer, percentile) for name in names}
    handles = [modules[name].register_forward_pre_hook(lambda m, inputs, o=observers[name]: o.observe(inputs[0].data))
               for name in names]
    was_training = model.training
    model.eval()
    try:
        count = 0
        for batch in batches:
            model(_model_input(batch))
            count += 1
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not count:
        raise ValueError("calibrate: no calibration batches (the iterable was empty)")
    return {name: obs.qparams() for name, obs in observers.items()}


def quantize_model(model: nn.Module, calibration_batches=None, observer: str = "minmax", percentile: float = 99.99,
                   inplace: bool = False) -> nn.Module:
    """An int8 copy of ``model`` (in eval mode): every Linear, Conv2d, Embedding and KANLinear becomes its
    Quantized* layer (weights int8, per output channel).

    ``calibration_batches`` (an iterable of inputs or (input, target) pairs, e.g. a few batches of a
    DataLoader): also quantize every float input of those layers per tensor, with ranges measured on these
    batches by ``observer`` ("minmax" or "percentile" at ``percentile``). Without it, only the weights are
    quantized (inputs stay float32), except that QAT layers (``prepare_qat``) bring the input range they
    learned. A parameter shared by two layers (GPT's tied embedding and head) is quantized once.
    """
    _check_float32(model, "quantize_model")
    qmodel = model if inplace else copy.deepcopy(model)
    layers = quantizable_layers(qmodel)
    if not layers:
        raise ValueError(f"quantize_model: {type(model).__name__} has no Linear, Conv2d, Embedding or KANLinear "
                         "layer to quantize")
    takes_floats = [name for name, m in layers if not isinstance(m, nn.Embedding)]
    qparams = {}
    if calibration_batches is not None:
        qparams = calibrate(qmodel, calibration_batches, takes_floats, observer, percentile)
    for name, layer in layers:
        if isinstance(layer, _QATInput) and name not in qparams and layer.input_range() is not None:
            qparams[name] = activation_qparams(*layer.input_range())
    convert_layers(qmodel, {name: name in qparams for name, _ in layers}, qparams)
    return qmodel.eval()


def convert_layers(model: nn.Module, layers: dict[str, bool], qparams: dict | None = None) -> None:
    """Replace the named layers (in place) by their int8 versions; ``layers[name]``: quantize its input too,
    with ``qparams[name]`` (placeholders when absent: a model rebuilt for loading a checkpoint)."""
    modules = dict(model.named_modules())
    shared: dict[int, tuple[Tensor, Tensor]] = {}  # id(float weight) -> (q, scale) of its first quantized layer
    for name, quantize_input in layers.items():
        layer = modules.get(name)
        if type(layer) not in QUANTIZED_TYPES:
            raise ValueError(f"cannot quantize {name!r}: it is {type(layer).__name__ if layer else 'missing'}, "
                             f"not one of {', '.join(t.__name__ for t in QUANTIZED_TYPES)}")
        weight = getattr(layer, "weight", None)
        key = id(weight) if weight is not None else None
        new = QUANTIZED_TYPES[type(layer)].from_float(layer, shared.get(key))
        if key is not None and key not in shared:
            shared[key] = (new.weight_q, new.weight_scale)
        if quantize_input:
            new.set_input_qparams(*(qparams or {}).get(name, (1.0, 0)))
        replace_module(model, name, new.train(layer.training))


def quantized_layers(model: nn.Module) -> dict[str, bool]:
    """{name: input quantized} of the int8 layers in ``model``."""
    return {name: bool(getattr(m, "input_quantized", False)) for name, m in model.named_modules()
            if isinstance(m, (QuantizedLinear, QuantizedConv2d, QuantizedEmbedding, QuantizedKANLinear))}
