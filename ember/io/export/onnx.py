"""ONNX export of ember's models, built node by node with ``onnx.helper`` (no PyTorch on the way).

``export_onnx(model, path)`` writes one self-contained ``.onnx`` file (weights as initializers) that
``onnx.checker.check_model(path, full_check=True)`` accepts and onnxruntime runs. Supported models and the
graph's input and output names (also returned by :func:`onnx_io_names`):

=====================================  ===============================  ===================================
model                                  input                            output
=====================================  ===============================  ===================================
``ember.models.MLP``                   ``input`` (batch, sizes[0])      ``logits`` (batch, sizes[-1])
``ember.models.LeNet5``                ``input`` (batch, C, 28, 28)     ``logits`` (batch, num_classes)
``ember.kan.baked.BakedKAN``, ``KAN``  ``input`` (batch, widths[0])     ``output`` (batch, widths[-1])
``ember.models.gpt.GPT``               ``idx`` int64 (batch, sequence)  ``logits`` (batch, sequence, vocab)
=====================================  ===============================  ===================================

``batch`` and ``sequence`` are symbolic dimensions. The MLP takes flat rows: flatten images to (batch, C·H·W).
A trained ``KAN`` is baked first (``BakedKAN.from_model``), so both give the same graph.

Each model is the same arithmetic as ember's forward in evaluation mode (dropout off), in ONNX operators:
``Gemm``/``MatMul`` for linear layers, ``Conv``/``MaxPool``/``Relu`` for LeNet-5; for the GPT ``Gather`` for
the token and position embeddings (positions 0..T-1 from the input's shape, by ``CumSum``: see ``_positions``),
``LayerNormalization``, ``Gelu`` (opset 20; ``approximate`` as the model's), ``Softmax`` with an additive
causal mask from ``Trilu``, and the head tied to the one stored token embedding; for the KAN the B-spline bases
by the Cox–de Boor recursion unrolled over the spline order, each input's interval chosen exactly as
``ember/ops/bspline.py`` chooses it (``Floor`` of the scaled position on uniform grids, the half-open
comparisons t_j <= x < t_{j+1} on others), so inputs on a knot, outside the grid range and beyond the extended
knots (all bases 0) agree with ``BakedKAN``. The GPT's hyper-connection residuals (``hc``, ``mhc``, ``mhc2``)
are exported too: the static maps as constants computed by ember itself, mHC's dynamic maps as its
RMS-normalised projection and ``config.sinkhorn_iters`` unrolled log-domain Sinkhorn–Knopp iterations
(``ReduceLogSumExp``).

Runtime behaviour that differs from ember's: the graph does not validate its input. A GPT sequence longer
than ``block_size`` makes onnxruntime fail in the node ``position_embedding`` with an ``INVALID_ARGUMENT`` error
("indices element out of data bounds"), where ember raises a ValueError; a token id >= vocab_size fails the
same way in ``token_embedding``, but a negative one counts from the end of the vocabulary (ONNX ``Gather``).
NaN or inf inputs to a KAN give NaN or 0 instead of ember's ValueError.

Precision: ``dtype=None`` exports in the model's own dtype, float32 for ember's default models. A float64
model stays float64 when onnxruntime's CPU provider runs every operator of its graph in double, which is the
case for MLPs with ReLU, Tanh, Sigmoid, SiLU, Hardtanh/ReLU6 or tanh-GELU activations, baked KANs, and GPTs
with ``gelu='tanh'`` (spelled out with ``Tanh`` in float64 graphs: onnxruntime's double ``Gelu`` rounds its
constants to float32). onnxruntime 1.32 has no double kernel for ``Conv`` (LeNet-5), exact GELU (its ``Erf``),
``Elu``/``Selu``/``Celu``, ``LeakyRelu``, ``Softplus``/``Mish``/``LogSigmoid``, ``Softsign`` or
``HardSigmoid``/``HardSwish``: such float64 models are cast to float32, with an :class:`ExportWarning` saying
so; asking for ``dtype='float64'`` explicitly raises an :class:`ExportError` for them instead.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from ..atomic import write_bytes_atomic
from .common import ExportError, ExportWarning, head_is_tied, require

__all__ = ["MIN_OPSET", "NO_DOUBLE_KERNEL", "export_onnx", "onnx_io_names"]

MIN_OPSET = 20  # the first with a Gelu operator
MAX_PROTOBUF_BYTES = 2**31 - 1  # one protobuf message; larger models would need ONNX's external data
# Operators (with the attributes that matter) that onnxruntime's CPU provider runs in float32 only (1.32).
NO_DOUBLE_KERNEL = frozenset({"Conv", "Gelu(none)", "Elu", "Selu", "Celu", "LeakyRelu", "Softplus", "Mish",
                              "Softsign", "HardSigmoid", "HardSwish"})
_DTYPES = {"f32": np.float32, "float32": np.float32, "f64": np.float64, "float64": np.float64}


def export_onnx(model, path: str | os.PathLike, *, opset: int = MIN_OPSET, dtype=None) -> Path:
    """Write ``model`` as an ONNX graph to ``path`` (atomically) and return the path.

    ``model``: an ``ember.models.MLP``, ``LeNet5``, ``KAN`` (baked on the way), ``ember.kan.baked.BakedKAN`` or
    ``ember.models.gpt.GPT``. ``opset``: the default ONNX opset, at least 20. ``dtype``: None (the model's own,
    see the module docstring for float64), ``'float32'``/``'f32'`` or ``'float64'``/``'f64'`` (or the NumPy
    types). The graph is checked with ``onnx.checker`` (full check, shape inference included) before it is
    written. Input and output names: :func:`onnx_io_names`.
    """
    onnx = require("onnx", "onnx")
    if int(opset) < MIN_OPSET:
        raise ValueError(f"export_onnx: opset {opset} is too old; the graphs use Gelu, which needs opset >= "
                         f"{MIN_OPSET}")
    build, kind = _builder_for(model)
    requested = _resolve_dtype(dtype)
    target = requested or _model_dtype(model)
    graph = _build(onnx, build, model, target)
    unsupported = sorted(graph.used & NO_DOUBLE_KERNEL) if target == np.float64 else []
    if unsupported and requested is not None:
        raise ExportError(f"export_onnx: onnxruntime has no float64 kernel for {', '.join(unsupported)} (in this "
                          f"{kind}); export it with dtype='float32'")
    if unsupported:
        warnings.warn(f"export_onnx: this float64 {kind} is exported as float32: onnxruntime has no float64 kernel "
                      f"for {', '.join(unsupported)}", ExportWarning, stacklevel=2)
        graph = _build(onnx, build, model, np.float32)
    proto = graph.model(kind, int(opset), _metadata(model, kind))
    onnx.checker.check_model(proto, full_check=True)
    if proto.ByteSize() > MAX_PROTOBUF_BYTES:
        raise ExportError(f"export_onnx: the {kind} needs {proto.ByteSize()} bytes, more than one ONNX file without "
                          "external data can hold (2 GiB)")
    path = Path(path)
    write_bytes_atomic(path, proto.SerializeToString())
    return path


def onnx_io_names(model) -> tuple[str, str]:
    """The (input, output) names of the graph ``export_onnx`` writes for ``model``."""
    _builder_for(model)
    from ...models.gpt import GPT

    if isinstance(model, GPT):
        return "idx", "logits"
    return "input", ("output" if _is_kan(model) else "logits")


# ---------------------------------------------------------------------------------------------- dispatch


def _supported():
    """(type, graph builder, name) for every exportable model, most specific first."""
    from ...kan.baked import BakedKAN
    from ...models.gpt import GPT
    from ...models.kan import KAN
    from ...models.lenet import LeNet5
    from ...models.mlp import MLP

    return ((MLP, _mlp_graph, "MLP"), (LeNet5, _lenet_graph, "LeNet5"), (BakedKAN, _kan_graph, "BakedKAN"),
            (KAN, _kan_graph, "KAN"), (GPT, _gpt_graph, "GPT"))


def _builder_for(model):
    for cls, build, name in _supported():
        if isinstance(model, cls):
            return build, name
    names = ", ".join(f"{cls.__module__}.{cls.__qualname__}" for cls, _, _ in _supported())
    raise TypeError(f"export_onnx: cannot export a {type(model).__module__}.{type(model).__qualname__}; "
                    f"supported models: {names}")


def _is_kan(model) -> bool:
    from ...kan.baked import BakedKAN
    from ...models.kan import KAN

    return isinstance(model, (BakedKAN, KAN))


def _resolve_dtype(dtype):
    if dtype is None:
        return None
    try:
        key = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        key = None
    if key not in _DTYPES:
        raise ValueError(f"export_onnx: dtype must be None, 'float32' or 'float64', got {dtype!r}")
    return _DTYPES[key]


def _model_dtype(model):
    from ...kan.baked import BakedKAN

    dt = model.layers[0].weight.dtype if isinstance(model, BakedKAN) else next(iter(model.parameters())).dtype
    return np.float64 if dt == np.float64 else np.float32


def _metadata(model, kind: str) -> dict:
    config = getattr(model, "config", None)
    meta = {"ember.model": kind}
    if config is not None:
        meta["ember.config"] = json.dumps(vars(config), default=list)
    elif hasattr(model, "widths"):
        meta["ember.widths"] = json.dumps(list(model.widths))
    return meta


def _build(onnx, build, model, dtype) -> _Graph:
    from ...autograd import no_grad

    graph = _Graph(onnx, dtype)
    with no_grad():
        build(graph, model)
    return graph


# ---------------------------------------------------------------------------------------------- graph builder


class _Graph:
    """Nodes and initializers of one graph; every value is named by its producer (``op`` returns the name)."""

    def __init__(self, onnx, dtype):
        self.onnx, self.helper = onnx, onnx.helper
        self.dtype = np.dtype(dtype)
        self.elem_type = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self.used: set[str] = set()  # operator keys, as NO_DOUBLE_KERNEL spells them
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array, name: str | None = None) -> str:
        """An initializer from an array or Tensor; floating-point values are cast to the graph's dtype."""
        arr = np.asarray(array.numpy() if hasattr(array, "numpy") else array)
        if arr.dtype.kind == "f":
            arr = arr.astype(self.dtype)
        name = name or self._name("const")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64))

    def scalar(self, value) -> str:
        """A floating-point scalar constant in the graph's dtype."""
        return self.const(np.asarray(value, dtype=self.dtype))

    def op(self, op_type: str, *inputs: str, outputs: int = 1, node: str | None = None, **attrs):
        """Add a node (named ``node``, for runtime errors to point at, or numbered); its output name (or a list
        of ``outputs`` names)."""
        names = [self._name(op_type.lower()) for _ in range(outputs)]
        node = node or self._name(op_type)
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, name=node, **attrs))
        self.used.add(f"Gelu({attrs.get('approximate', 'none')})" if op_type == "Gelu" else op_type)
        return names[0] if outputs == 1 else names

    def input(self, name: str, shape, elem_type=None) -> str:
        self.inputs.append(self.helper.make_tensor_value_info(name, elem_type or self.elem_type, shape))
        return name

    def output(self, value: str, name: str, shape) -> None:
        """Name the graph's output (an Identity from ``value``)."""
        self.nodes.append(self.helper.make_node("Identity", [value], [name], name=self._name("Identity")))
        self.outputs.append(self.helper.make_tensor_value_info(name, self.elem_type, shape))

    def model(self, kind: str, opset: int, metadata: dict):
        from ... import __version__

        helper = self.helper
        graph = helper.make_graph(self.nodes, f"ember_{kind}", self.inputs, self.outputs, self.initializers)
        opsets = [helper.make_opsetid("", opset)]
        proto = helper.make_model(graph, opset_imports=opsets, producer_name="ember", producer_version=__version__,
                                  ir_version=helper.find_min_ir_version_for(opsets),
                                  doc_string=f"ember {kind}, exported by ember.io.export.onnx")
        helper.set_model_props(proto, metadata)
        return proto


# ---------------------------------------------------------------------------------------------- shared layers


def _linear(g: _Graph, x: str, layer) -> str:
    """y = x Wᵀ + b for rows x (N, in): one Gemm."""
    bias = None if layer.bias is None else g.const(layer.bias)
    return g.op("Gemm", x, g.const(layer.weight), *([bias] if bias else []), transB=1)


def _linear_nd(g: _Graph, x: str, layer) -> str:
    """y = x Wᵀ + b for x (..., in), which Gemm does not take: MatMul with the stored transpose (+ Add)."""
    y = g.op("MatMul", x, g.const(layer.weight.numpy().T))
    return y if layer.bias is None else g.op("Add", y, g.const(layer.bias))


def _layer_norm(g: _Graph, x: str, ln) -> str:
    if len(ln.normalized_shape) != 1:
        raise ExportError(f"export_onnx: LayerNorm over {ln.normalized_shape} (more than the last axis) is not "
                          "supported")
    weight = ln.weight if ln.weight is not None else np.ones(ln.normalized_shape)
    params = [g.const(weight)] + ([] if ln.bias is None else [g.const(ln.bias)])
    return g.op("LayerNormalization", x, *params, axis=-1, epsilon=float(ln.eps))


def _activation(g: _Graph, x: str, layer) -> str:
    """The ONNX form of one of ember's activation layers (``nn.layers.ACTIVATIONS``)."""
    from ...nn import layers as L
    from ...nn.functional.activation import SELU_ALPHA, SELU_SCALE

    name = type(layer).__name__
    simple = {"ReLU": "Relu", "Tanh": "Tanh", "Sigmoid": "Sigmoid", "Mish": "Mish", "Softsign": "Softsign",
              "Hardswish": "HardSwish"}
    if name in simple:
        return g.op(simple[name], x)
    if isinstance(layer, L.GELU):
        return _gelu(g, x, layer.approximate)
    if isinstance(layer, L.SiLU):
        return g.op("Mul", x, g.op("Sigmoid", x))
    if isinstance(layer, (L.ReLU6, L.Hardtanh)):
        low, high = (0.0, 6.0) if isinstance(layer, L.ReLU6) else (layer.min_val, layer.max_val)
        return g.op("Clip", x, g.scalar(low), g.scalar(high))
    if isinstance(layer, L.Hardsigmoid):
        return g.op("HardSigmoid", x, alpha=1.0 / 6.0, beta=0.5)
    if isinstance(layer, L.LeakyReLU):
        return g.op("LeakyRelu", x, alpha=float(layer.negative_slope))
    if isinstance(layer, L.SELU):
        return g.op("Selu", x, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    if isinstance(layer, L.ELU):
        return g.op("Elu", x, alpha=float(layer.alpha))
    if isinstance(layer, L.CELU):
        return g.op("Celu", x, alpha=float(layer.alpha))
    if isinstance(layer, L.LogSigmoid):  # log(sigmoid(x)) = -softplus(-x)
        return g.op("Neg", g.op("Softplus", g.op("Neg", x)))
    if isinstance(layer, L.Softplus):
        return _softplus(g, x, layer.beta, layer.threshold)
    raise ExportError(f"export_onnx: no ONNX form for the activation {name}")


def _softplus(g: _Graph, x: str, beta: float, threshold: float) -> str:
    """log(1 + e^(βx))/β, and x itself where βx > threshold (ember's and PyTorch's cut-off)."""
    z = x if beta == 1.0 else g.op("Mul", x, g.scalar(beta))
    soft = g.op("Softplus", z)
    if beta != 1.0:
        soft = g.op("Div", soft, g.scalar(beta))
    return g.op("Where", g.op("Greater", z, g.scalar(threshold)), x, soft)


# ---------------------------------------------------------------------------------------------- MLP, LeNet-5


def _mlp_graph(g: _Graph, model) -> None:
    from ...nn import layers as L

    sizes = model.config.sizes
    x = g.input("input", ["batch", sizes[0]])
    for layer in model.net:
        if isinstance(layer, L.Linear):
            x = _linear(g, x, layer)
        elif not isinstance(layer, (L.Flatten, L.Dropout)):  # rows are flat already; dropout is off in inference
            x = _activation(g, x, layer)
    g.output(x, "logits", ["batch", sizes[-1]])


def _lenet_graph(g: _Graph, model) -> None:
    """conv 5x5 pad 2 -> max-pool 2 -> ReLU -> conv 5x5 -> max-pool 2 -> ReLU -> 400-120-84-classes, as
    ``LeNet5.forward`` (ReLU after the pooling)."""
    x = g.input("input", ["batch", model.config.in_channels, 28, 28])
    for conv in (model.conv1, model.conv2):
        p = conv.padding
        params = [g.const(conv.weight)] + ([] if conv.bias is None else [g.const(conv.bias)])
        x = g.op("Conv", x, *params, kernel_shape=list(conv.weight.shape[2:]), strides=list(conv.stride),
                 pads=[p[0], p[1], p[0], p[1]], dilations=list(conv.dilation), group=conv.groups)
        x = g.op("Relu", g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2]))
    x = g.op("Flatten", x, axis=1)  # (N, 400)
    x = g.op("Relu", _linear(g, x, model.fc1))
    x = g.op("Relu", _linear(g, x, model.fc2))
    g.output(_linear(g, x, model.fc3), "logits", ["batch", model.config.num_classes])


# ---------------------------------------------------------------------------------------------- baked KAN


def _kan_graph(g: _Graph, model) -> None:
    from ...kan.baked import BakedKAN

    baked = model if isinstance(model, BakedKAN) else BakedKAN.from_model(model)
    x = g.input("input", ["batch", baked.widths[0]])
    for layer in baked.layers:
        x = _kan_layer(g, x, layer)
    g.output(x, "output", ["batch", baked.widths[-1]])


def _kan_layer(g: _Graph, x: str, layer) -> str:
    """[silu(x_i), B_0(x_i), ..., B_{G+k-1}(x_i)] for every input i, flattened, times Wᵀ (``BakedLayer``)."""
    grid = _knots(layer).astype(g.dtype)  # (in, G + 2k + 1)
    x_col = g.op("Unsqueeze", x, g.ints([-1]))  # (n, in, 1)
    basis = _interval_indicator(g, x, x_col, grid, layer.uniform)  # order 0: (n, in, G + 2k)
    for p in range(1, layer.k + 1):
        basis = _cox_de_boor_step(g, x_col, basis, grid, p)  # order p: (n, in, G + 2k - p)
    silu = g.op("Unsqueeze", g.op("Mul", x, g.op("Sigmoid", x)), g.ints([-1]))
    design = g.op("Concat", silu, basis, axis=-1)  # (n, in, 1 + G + k)
    flat = g.op("Reshape", design, g.ints([0, -1]))
    return g.op("MatMul", flat, g.const(layer.weight_t))


def _knots(layer) -> np.ndarray:
    """The layer's knots as ember's B-splines see them: a grid it treats as uniform (evenly spaced to a relative
    1e-6) is t_0 + j·(t_1 - t_0) exactly, not its stored values (float32 roundings of those)."""
    grid = layer.grid.astype(np.float64)
    if not layer.uniform:
        return grid
    return grid[:, :1] + np.arange(grid.shape[1]) * (grid[:, 1:2] - grid[:, :1])


def _interval_indicator(g: _Graph, x: str, x_col: str, grid: np.ndarray, uniform: bool) -> str:
    """B^0: 1 on the knot interval holding each input, chosen as ``ember/ops/bspline.py`` chooses it, else 0.

    Uniform knots: interval floor((x - t_0)/h), from the same float operations as ``local_uniform`` (so inputs
    on a knot land in the same interval). Others: t_j <= x < t_{j+1} (``local_general``'s half-open rule).
    Outside [t_0, t_last) no interval matches and every basis is 0.
    """
    n_intervals = grid.shape[1] - 1
    if uniform:
        inv_h = 1.0 / (grid[:, 1] - grid[:, 0])
        s = g.op("Floor", g.op("Mul", g.op("Sub", x, g.const(grid[:, 0])), g.const(inv_h)))
        hit = g.op("Equal", g.op("Unsqueeze", s, g.ints([-1])), g.const(np.arange(n_intervals, dtype=g.dtype)))
    else:
        at_or_after = g.op("GreaterOrEqual", x_col, g.const(grid[:, :-1]))
        hit = g.op("And", at_or_after, g.op("Less", x_col, g.const(grid[:, 1:])))
    return g.op("Cast", hit, to=g.elem_type)


def _cox_de_boor_step(g: _Graph, x_col: str, prev: str, grid: np.ndarray, p: int) -> str:
    """Bases of order p from those of order p - 1:
    B_{i,p} = (x - t_i)/(t_{i+p} - t_i)·B_{i,p-1} + (t_{i+p+1} - x)/(t_{i+p+1} - t_{i+1})·B_{i+1,p-1},
    a zero knot span counting 0 (its basis is 0 there), as de Boor's recursion in ``local_general``."""
    width = grid.shape[1] - 1 - p  # bases of order p
    t_i, t_ip, t_ip1, t_i1 = grid[:, :width], grid[:, p:p + width], grid[:, p + 1:p + 1 + width], grid[:, 1:1 + width]
    lower = g.op("Slice", prev, g.ints([0]), g.ints([width]), g.ints([-1]))  # B_{i,p-1}
    upper = g.op("Slice", prev, g.ints([1]), g.ints([width + 1]), g.ints([-1]))  # B_{i+1,p-1}
    rising = g.op("Div", g.op("Mul", g.op("Sub", x_col, g.const(t_i)), lower), g.const(_nonzero(t_ip - t_i)))
    falling = g.op("Div", g.op("Mul", g.op("Sub", g.const(t_ip1), x_col), upper), g.const(_nonzero(t_ip1 - t_i1)))
    return g.op("Add", rising, falling)


def _nonzero(span: np.ndarray) -> np.ndarray:
    return np.where(span == 0, 1, span).astype(span.dtype)


# ---------------------------------------------------------------------------------------------- GPT


def _gpt_graph(g: _Graph, model) -> None:
    """Token + position embedding, pre-LN blocks (plain or hyper-connection residuals), final LayerNorm, tied head."""
    c = model.config
    tr = model.transformer
    idx = g.input("idx", ["batch", "sequence"], elem_type=g.onnx.TensorProto.INT64)
    wte = g.const(tr["wte"].weight, "transformer.wte.weight")
    length = g.op("Shape", idx, start=1, end=2)  # [T]
    positions = _positions(g, length)  # 0..T-1; Gather fails on those past block_size
    tokens = g.op("Gather", wte, idx, axis=0, node="token_embedding")  # (B, T, C)
    wpe = g.const(tr["wpe"].weight, "transformer.wpe.weight")
    x = g.op("Add", tokens, g.op("Gather", wpe, positions, axis=0, node="position_embedding"))
    mask = _causal_mask(g, length)
    n = c.streams
    if n > 1:  # every stream starts as a copy of the embedding: (B, T, n, C)
        x = g.op("Expand", g.op("Unsqueeze", x, g.ints([-2])), g.ints([1, 1, n, 1]))
    for block in tr["h"]:
        x = _around(g, block.hc_attn, x, lambda u, b=block: _attention(g, b, _layer_norm(g, u, b.ln_1), mask, c))
        x = _around(g, block.hc_mlp, x, lambda u, b=block: _mlp(g, b.mlp, _layer_norm(g, u, b.ln_2)))
    if n > 1:
        x = g.op("ReduceSum", x, g.ints([-2]), keepdims=0)
    if head_is_tied(model):
        head = g.op("Transpose", wte, perm=[1, 0])  # the tied head reads the one stored embedding
    else:
        head = g.const(model.lm_head.weight.numpy().T, "lm_head.weight.T")
    logits = g.op("MatMul", _layer_norm(g, x, tr["ln_f"]), head)
    g.output(logits, "logits", ["batch", "sequence", c.vocab_size])


def _positions(g: _Graph, length: str) -> str:
    """0..T-1 (int64) from ``length`` [T], as the running sum of T ones minus one. (``Range`` would say it
    plainer, but onnxruntime 1.32's extended optimisations rewrite Range + Gather into a Slice with malformed
    starts, and the session then fails on every run.)"""
    one = g.helper.make_tensor("one", g.onnx.TensorProto.INT64, [1], [1])
    ones = g.op("ConstantOfShape", length, value=one)
    return g.op("Sub", g.op("CumSum", ones, g.ints(0)), g.ints([1]))


def _causal_mask(g: _Graph, length: str) -> str:
    """Additive (T, T) mask from ``length`` [T]: 0 where key j <= query i, -inf above the diagonal (``Trilu``
    keeps j >= i + 1)."""
    shape = g.op("Concat", length, length, axis=0)
    fill = g.helper.make_tensor("minus_inf", g.elem_type, [1], [-np.inf])
    return g.op("Trilu", g.op("ConstantOfShape", shape, value=fill), g.ints(1), upper=1)


def _attention(g: _Graph, block, x: str, mask: str, c) -> str:
    """softmax(q kᵀ/√D + mask) v per head, from the fused projection, then c_proj: (B, T, C) -> (B, T, C)."""
    attn = block.attn
    h, d = c.n_head, c.n_embd // c.n_head
    qkv = _linear_nd(g, x, attn.c_attn)  # (B, T, 3C)
    q, k, v = g.op("Split", qkv, g.ints([c.n_embd] * 3), outputs=3, axis=-1)
    heads = g.ints([0, 0, h, d])
    q = g.op("Transpose", g.op("Reshape", q, heads), perm=[0, 2, 1, 3])  # (B, H, T, D)
    k_t = g.op("Transpose", g.op("Reshape", k, heads), perm=[0, 2, 3, 1])  # (B, H, D, T)
    v = g.op("Transpose", g.op("Reshape", v, heads), perm=[0, 2, 1, 3])
    scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k_t), g.scalar(1.0 / math.sqrt(d))), mask)  # (B, H, T, T)
    y = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)  # (B, H, T, D)
    y = g.op("Reshape", g.op("Transpose", y, perm=[0, 2, 1, 3]), g.ints([0, 0, c.n_embd]))
    return _linear_nd(g, y, attn.c_proj)


def _mlp(g: _Graph, mlp, x: str) -> str:
    return _linear_nd(g, _gelu(g, _linear_nd(g, x, mlp.c_fc), mlp.gelu.approximate), mlp.c_proj)


def _gelu(g: _Graph, x: str, approximate: str) -> str:
    """The Gelu operator; in float64 graphs the tanh form is spelled out as ember computes it,
    0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), since onnxruntime's double Gelu rounds its constants to float32
    (6e-9 off)."""
    if approximate != "tanh" or g.dtype != np.float64:
        return g.op("Gelu", x, approximate=approximate)
    cube = g.op("Mul", g.op("Mul", g.op("Mul", g.scalar(0.044715), x), x), x)
    t = g.op("Tanh", g.op("Mul", g.scalar(math.sqrt(2.0 / math.pi)), g.op("Add", x, cube)))
    return g.op("Mul", g.op("Mul", g.scalar(0.5), x), g.op("Add", g.scalar(1.0), t))


# ---------------------------------------------------------------------------------------------- hyper-connections


def _around(g: _Graph, hc, x: str, branch) -> str:
    """One sub-layer: x + F(x) (plain), or a hyper-connection's read, F, and write (``ember/models/gpt.py``)."""
    if hc is None:
        return g.op("Add", x, branch(x))
    h_pre, h_post, h_res = _hc_coefficients(g, hc, x)
    u = g.op("ReduceSum", g.op("Mul", x, h_pre), g.ints([-2]), keepdims=0)  # Σ_i h_i X_i: (B, T, C)
    y = g.op("Unsqueeze", branch(u), g.ints([-2]))  # (B, T, 1, C)
    mixed = x if h_res is None else g.op("MatMul", h_res, x)
    return g.op("Add", mixed, g.op("Mul", h_post, y))  # H X + h_post ⊗ y


def _hc_coefficients(g: _Graph, hc, x: str):
    """(h_pre, h_post) shaped (..., n, 1) to broadcast over C, and H_res (..., n, n) or None."""
    if hc.mode != "mhc":  # static maps: ember computes them, the graph holds the values
        h_pre, h_post, h_res = (None if t is None else t.numpy() for t in hc.coefficients(None))
        return (g.const(h_pre[:, None]), g.const(h_post[:, None]), None if h_res is None else g.const(h_res))
    n = hc.streams
    flat = g.op("Reshape", x, g.ints([0, 0, n * hc.dim]))  # (B, T, nC)
    d = _rms_project(g, flat, hc.phi.numpy(), n * hc.dim)  # (B, T, 2n (+ n²))
    alpha = hc.alpha.numpy()

    def part(i, start, stop, bias):
        piece = g.op("Slice", d, g.ints([start]), g.ints([stop]), g.ints([-1]))
        return g.op("Add", g.op("Mul", g.scalar(alpha[i]), piece), g.const(bias))

    h_pre = g.op("Sigmoid", part(0, 0, n, hc.b_pre))
    h_post = g.op("Mul", g.scalar(2.0), g.op("Sigmoid", part(1, n, 2 * n, hc.b_post)))
    h_pre, h_post = (g.op("Unsqueeze", h, g.ints([-1])) for h in (h_pre, h_post))
    if not hc.mix:
        return h_pre, h_post, None
    piece = g.op("Slice", d, g.ints([2 * n]), g.ints([2 * n + n * n]), g.ints([-1]))
    res = g.op("Add", g.op("Mul", g.scalar(alpha[2]), g.op("Reshape", piece, g.ints([0, 0, n, n]))), g.const(hc.b_res))
    return h_pre, h_post, _sinkhorn(g, res, hc.sinkhorn_iters)


def _rms_project(g: _Graph, x: str, phi: np.ndarray, k: int) -> str:
    """(x @ φ)/rms(x), rms = sqrt(mean(x²) + eps) with eps the dtype's machine epsilon (``F.rms_project``)."""
    eps = float(np.finfo(_ember_dtype(phi)).eps)
    mean_sq = g.op("Div", g.op("ReduceSumSquare", x, g.ints([-1]), keepdims=1), g.scalar(k))
    rms = g.op("Sqrt", g.op("Add", mean_sq, g.scalar(eps)))
    return g.op("Div", g.op("MatMul", x, g.const(phi)), rms)


def _ember_dtype(array: np.ndarray):
    return np.float64 if array.dtype == np.float64 else np.float32


def _sinkhorn(g: _Graph, logits: str, iters: int) -> str:
    """exp of ``iters`` column-then-row log-normalisations (``ember/ops/hyper.py``'s Sinkhorn), unrolled."""
    log = g.op("Sub", logits, g.op("ReduceMax", logits, g.ints([-2, -1]), keepdims=1))
    for _ in range(iters):
        for axis in (-2, -1):
            log = g.op("Sub", log, g.op("ReduceLogSumExp", log, g.ints([axis]), keepdims=1))
    return g.op("Exp", log)
