"""Making trained models smaller and faster: int8 quantization, pruning, distillation (``ember compress``).

- ``quant``: post-training int8 (weights per output channel, inputs per tensor from calibration batches),
  fake quantization with straight-through gradients for quantization-aware training, the int8 layers;
- ``prune``: magnitude pruning (per layer or global) with masks that survive optimizer steps, structured
  pruning that removes whole neurons and channels, iterative prune-and-fine-tune schedules;
- ``distill``: a student trained from a teacher's soft targets.

A compressed model is saved as an ordinary ember checkpoint (``save_compressed``) whose ``extra`` metadata
holds a ``compression`` record: every resized or int8 layer with its weight shape. ``load_model`` reads it
and calls ``restore_compressed`` to give a freshly built model those layers before the weights load, so
``ember eval`` and ``load_model`` read compressed checkpoints like any other.
"""

from __future__ import annotations

import os

import numpy as np

from .. import nn
from . import prune, quant
from .distill import distill, distillation_loss, mlp_student
from .prune import (
    MaskedOptimizer,
    amount_for_macs,
    apply_masks,
    count_macs,
    prune_and_finetune,
    prune_channels,
    prune_magnitude,
    prune_neurons,
    prune_structured,
    remove_masks,
    resize_layer,
    sparsity,
    sparsity_schedule,
)
from .quant import (
    QATConv2d,
    QATLinear,
    QuantizedConv2d,
    QuantizedEmbedding,
    QuantizedKANLinear,
    QuantizedLinear,
    convert_layers,
    fake_quantize,
    prepare_qat,
    quantize_model,
    quantized_layers,
    replace_module,
)

SPEC_VERSION = 1
_LAYER_TYPES = (nn.Linear, nn.Conv2d, nn.Embedding, QuantizedLinear, QuantizedConv2d, QuantizedEmbedding)


def compression_spec(model: nn.Module) -> dict:
    """What a checkpoint needs to rebuild ``model``'s layers: {"version", "layers": {name: {"shape": weight
    shape, "int8": bool, "input_int8": bool}}} for each Linear, Conv2d and Embedding (float or int8) and each
    int8 KAN layer."""
    qat = [name for name, m in model.named_modules() if isinstance(m, (QATLinear, QATConv2d))]
    if qat:
        raise ValueError(f"{qat[0]} is a QAT layer: convert the model with quantize_model(model) before saving it")
    int8 = quantized_layers(model)
    layers = {}
    for name, module in model.named_modules():
        if isinstance(module, _LAYER_TYPES + (QuantizedKANLinear,)):
            weight = getattr(module, "weight_q", None)
            if weight is None:
                weight = getattr(module, "base_weight_q", None)
            if weight is None:
                weight = module.weight
            layers[name] = {"shape": list(weight.shape), "int8": name in int8, "input_int8": int8.get(name, False)}
    return {"version": SPEC_VERSION, "layers": layers}


def restore_compressed(model: nn.Module, spec: dict) -> nn.Module:
    """Give a freshly built ``model`` the layers ``spec`` (``compression_spec``) records, in place: layers of
    another size (structured pruning) first, then the int8 layers; the weights are loaded afterwards."""
    if not isinstance(spec, dict) or spec.get("version") != SPEC_VERSION or not isinstance(spec.get("layers"), dict):
        raise ValueError(f"unsupported compression record {spec!r:.80} (this ember reads version {SPEC_VERSION})")
    modules = dict(model.named_modules())
    try:
        for name, entry in spec["layers"].items():
            layer = modules.get(name)
            if layer is None:
                raise ValueError(f"the compression record names a layer {name!r} that {type(model).__name__} lacks")
            shape = tuple(entry["shape"])
            if isinstance(layer, (nn.Linear, nn.Conv2d)) and tuple(layer.weight.shape) != shape:
                replace_module(model, name, resize_layer(layer, shape))
        convert_layers(model, {name: bool(e["input_int8"]) for name, e in spec["layers"].items() if e["int8"]})
    except (KeyError, AttributeError) as exc:
        raise ValueError(f"a damaged compression record (missing {exc})") from None
    return model


def stored_weights(model: nn.Module) -> dict:
    """What a model stores as weights: its parameters and its int8 codes and scales (``count`` values, ``nonzero``
    of them, ``bytes`` in memory and, but for the file's header, on disk)."""
    tensors = {id(t): t for t in model.parameters()}
    tensors.update({id(t): t for name, t in model.named_buffers() if name.endswith(("_q", "_scale"))})
    arrays = [t.numpy() for t in tensors.values()]
    return {"count": sum(a.size for a in arrays), "nonzero": sum(int(np.count_nonzero(a)) for a in arrays),
            "bytes": sum(a.nbytes for a in arrays)}


def save_compressed(path: str | os.PathLike, model: nn.Module, extra: dict | None = None):
    """``save_checkpoint`` with the ``compression`` record that lets ``load_model`` rebuild the layers."""
    from ..io.checkpoint import save_checkpoint

    return save_checkpoint(path, model, extra={**(extra or {}), "compression": compression_spec(model)})


__all__ = [
    "MaskedOptimizer", "QATConv2d", "QATLinear", "QuantizedConv2d", "QuantizedEmbedding", "QuantizedKANLinear",
    "QuantizedLinear", "amount_for_macs", "apply_masks", "compression_spec", "count_macs", "distill",
    "distillation_loss", "fake_quantize", "mlp_student", "prepare_qat", "prune", "prune_and_finetune",
    "prune_channels", "prune_magnitude", "prune_neurons", "prune_structured", "quant", "quantize_model",
    "remove_masks", "restore_compressed", "save_compressed", "sparsity", "sparsity_schedule", "stored_weights",
]
