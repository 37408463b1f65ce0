"""Pruning: unstructured magnitude pruning with masks that survive training, and structured pruning that makes
layers smaller.

**Unstructured** (``prune_magnitude``): the weights of smallest |w| become 0, either the same fraction of every
layer (``scope="layer"``) or the smallest over all layers together (``scope="global"``, which lets each layer
keep what it needs: the first layer of an MNIST MLP holds 85% of the weights and tolerates most of the
pruning). Each pruned layer keeps a ``weight_mask`` buffer (not saved: the zeros are in the weights); after
every optimizer step ``apply_masks`` writes the zeros again, which ``MaskedOptimizer`` does for any optimizer
(a plain step would regrow the pruned weights, as Adam moves a zero weight whose gradient is not zero). The
dense tensors keep their shapes, so the speed does not change: the gain is in what compresses.

**Structured** (``prune_structured``, ``prune_neurons``, ``prune_channels``): whole hidden neurons of Linear
layers and output channels of Conv2d layers go (those with the smallest L1 norm of incoming weights), and the
next layer loses the matching inputs, so the model is smaller and faster (``count_macs`` counts the
multiply-accumulates). It works on chains of layers joined by per-unit operations (activations, pooling,
flatten): the MLP and LeNet-5 (``structured_chain``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np

from .. import backend, nn
from ..autograd import no_grad
from ..tensor import Tensor
from .quant import QuantizedConv2d, QuantizedLinear, replace_module

SCOPES = ("layer", "global")

__all__ = [
    "MaskedOptimizer", "apply_masks", "count_macs", "amount_for_macs", "prunable_layers", "prune_and_finetune",
    "prune_channels", "prune_magnitude", "prune_neurons", "prune_structured", "remove_masks", "resize_layer",
    "sparsity", "sparsity_schedule", "structured_chain",
]


# ----------------------------------------------------------------------------- unstructured


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of the Linear and Conv2d layers whose weights magnitude pruning considers (biases stay)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _check_amount(amount: float, what: str) -> float:
    amount = float(amount)
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"{what}: amount must be a fraction in [0, 1), got {amount}")
    return amount


def _smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """A boolean mask of the k smallest entries of the flat ``scores`` (ties broken by position)."""
    out = np.zeros(scores.size, dtype=bool)
    if k > 0:
        out[np.argsort(scores, kind="stable")[:k]] = True
    return out


@no_grad()
def prune_magnitude(model: nn.Module, amount: float, scope: str = "layer", layers: list[str] | None = None
                    ) -> dict[str, float]:
    """Zero the ``amount`` fraction of smallest-magnitude weights, in place; returns each layer's sparsity.

    ``scope="layer"``: round(amount·n) weights of every layer of n weights; ``"global"``: round(amount·N) of
    the N weights of all the layers together. ``layers``: names to prune (default: every Linear and Conv2d).
    A weight already masked (by an earlier call) stays pruned, so a schedule of rising amounts prunes
    further each time. Registers a ``weight_mask`` buffer (1 kept, 0 pruned) on each layer.
    """
    amount = _check_amount(amount, "prune_magnitude")
    if scope not in SCOPES:
        raise ValueError(f"prune_magnitude: scope must be one of {SCOPES}, got {scope!r}")
    chosen = _chosen_layers(model, layers)
    magnitudes = [np.abs(backend.to_device(m.weight.data, backend.CPU)).ravel() for _, m in chosen]
    if scope == "global":
        flat = np.concatenate(magnitudes)
        pruned = np.split(_smallest(flat, round(amount * flat.size)), np.cumsum([a.size for a in magnitudes])[:-1])
    else:
        pruned = [_smallest(a, round(amount * a.size)) for a in magnitudes]
    for (_, layer), drop in zip(chosen, pruned):
        keep = ~drop.reshape(layer.weight.shape)
        old = getattr(layer, "weight_mask", None)
        if old is not None:
            keep &= backend.to_device(old.data, backend.CPU).astype(bool)
        mask = backend.to_device(keep.astype(layer.weight.dtype), layer.weight.device)
        layer.register_buffer("weight_mask", Tensor(mask), persistent=False)
    apply_masks(model)
    return {name: 1.0 - float(layer.weight_mask.data.mean()) for name, layer in chosen}


def _chosen_layers(model: nn.Module, names: list[str] | None) -> list[tuple[str, nn.Module]]:
    available = dict(prunable_layers(model))
    if names is None:
        chosen = list(available.items())
    else:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"prune: {unknown} are not Linear or Conv2d layers of {type(model).__name__}; "
                             f"prunable: {sorted(available)}")
        chosen = [(n, available[n]) for n in names]
    if not chosen:
        raise ValueError(f"prune: {type(model).__name__} has no Linear or Conv2d layer to prune")
    return chosen


@no_grad()
def apply_masks(model: nn.Module) -> None:
    """Write the pruned zeros again (``weight *= weight_mask`` in every masked layer): the hook to call after
    each optimizer step."""
    for module in model.modules():
        mask = getattr(module, "weight_mask", None)
        if mask is not None:
            module.weight.data *= mask.data
            module.weight._bump_version()


def remove_masks(model: nn.Module) -> None:
    """Make pruning permanent: drop the masks (the weights keep their zeros, and training may regrow them)."""
    for module in model.modules():
        if getattr(module, "weight_mask", None) is not None:
            del module.weight_mask


def sparsity(model: nn.Module) -> float:
    """The fraction of zero weights over the Linear and Conv2d layers."""
    sizes = [(int((m.weight.data == 0).sum()), m.weight.numel()) for _, m in prunable_layers(model)]
    return sum(z for z, _ in sizes) / max(sum(n for _, n in sizes), 1)


class MaskedOptimizer:
    """An optimizer whose ``step`` keeps ``model``'s pruned weights at zero (it calls ``apply_masks`` after the
    wrapped optimizer's step); everything else (param_groups, zero_grad, state_dict, schedulers) is the
    wrapped optimizer's."""

    def __init__(self, optimizer, model: nn.Module):
        self.optimizer, self.model = optimizer, model

    def step(self) -> None:
        self.optimizer.step()
        apply_masks(self.model)

    def __getattr__(self, name):
        if name == "optimizer":  # not set yet (a copy under construction): no recursion
            raise AttributeError(name)
        return getattr(self.optimizer, name)


def sparsity_schedule(final: float, rounds: int) -> list[float]:
    """Amounts rising to ``final`` over ``rounds`` (Zhu & Gupta's cubic schedule: s_r = final·(1 - (1 - r/R)³)),
    pruning fast while many weights are redundant and gently near the end."""
    _check_amount(final, "sparsity_schedule")
    if rounds < 1:
        raise ValueError(f"sparsity_schedule: rounds must be >= 1, got {rounds}")
    return [final * (1.0 - (1.0 - r / rounds) ** 3) for r in range(1, rounds + 1)]


def prune_and_finetune(model: nn.Module, amounts: list[float], finetune: Callable, structured: bool = False,
                       scope: str = "global") -> tuple[nn.Module, list[dict]]:
    """Iterative pruning: for each amount, prune, then ``finetune(model, round)`` (which trains it; with
    unstructured pruning, through ``MaskedOptimizer``). Returns (the pruned model, one record per round).

    Unstructured: ``amounts`` are the total sparsities to reach (rising, e.g. ``sparsity_schedule``), pruned in
    place with ``scope``. Structured: ``amounts`` are the total fractions of units removed, each round removing
    what brings the remaining units there; each round returns a new, smaller model.
    """
    history, removed = [], 0.0
    for r, amount in enumerate(amounts, 1):
        amount = _check_amount(amount, "prune_and_finetune")
        if structured:
            model = prune_structured(model, 1.0 - (1.0 - amount) / (1.0 - removed))
            removed = amount
        else:
            prune_magnitude(model, amount, scope)
        record = {"round": r, "amount": amount, "sparsity": sparsity(model)}
        result = finetune(model, r)
        if isinstance(result, dict):
            record.update(result)
        history.append(record)
    return model, history


# ----------------------------------------------------------------------------- structured


def structured_chain(model: nn.Module) -> list[str]:
    """The names of ``model``'s layers in forward order, when they form a chain that structured pruning may cut:
    each layer's outputs feed only the next layer, through per-unit operations. The MLP and LeNet-5."""
    from ..models import MLP, LeNet5

    if isinstance(model, MLP):
        return [f"net.{name}" for name, m in model.net.named_children() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if isinstance(model, LeNet5):
        return ["conv1", "conv2", "fc1", "fc2", "fc3"]
    raise TypeError(f"structured pruning knows the layer chains of the MLP and LeNet-5, not {type(model).__name__} "
                    "(use prune_magnitude, which works on any model)")


def resize_layer(layer: nn.Module, weight_shape: tuple[int, ...]) -> nn.Module:
    """A new float layer like ``layer`` (kernel, stride, padding, bias...) whose weight has ``weight_shape``."""
    shape = tuple(int(n) for n in weight_shape)
    if isinstance(layer, nn.Linear) and len(shape) == 2:
        new = nn.Linear(shape[1], shape[0], bias=layer.bias is not None)
    elif isinstance(layer, nn.Conv2d) and len(shape) == 4 and shape[2:] == tuple(layer.kernel_size):
        new = nn.Conv2d(shape[1] * layer.groups, shape[0], layer.kernel_size, layer.stride, layer.padding,
                        layer.dilation, layer.groups, bias=layer.bias is not None)
    else:
        raise ValueError(f"cannot resize a {type(layer).__name__} with weight {tuple(layer.weight.shape)} to a "
                         f"weight of shape {shape}")
    return new.to(dtype=layer.weight.dtype, device=layer.weight.device).train(layer.training)


def _unit_scores(layer, cols: np.ndarray | None) -> np.ndarray:
    """L1 norm of each output unit's incoming weights (a row of a Linear, a filter of a Conv2d), counting only
    the inputs ``cols`` that remain (None: all)."""
    w = backend.to_device(layer.weight.data, backend.CPU)
    if cols is not None:
        w = w[:, cols]
    return np.abs(w).reshape(w.shape[0], -1).sum(axis=1)


def _input_columns(layer, next_layer, keep: np.ndarray) -> np.ndarray:
    """The inputs of ``next_layer`` that carry ``layer``'s kept units: the same indices, or for a Conv2d feeding
    a Linear through flatten, each kept channel's block of H·W consecutive features."""
    n_in = next_layer.weight.shape[1] * getattr(next_layer, "groups", 1)
    units = layer.weight.shape[0]
    if n_in == units:
        return keep
    if isinstance(layer, nn.Conv2d) and isinstance(next_layer, nn.Linear) and n_in % units == 0:
        spatial = n_in // units
        return (keep[:, None] * spatial + np.arange(spatial)).ravel()
    raise ValueError(f"structured pruning: {type(next_layer).__name__} takes {n_in} inputs, which do not follow "
                     f"from the {units} units of the {type(layer).__name__} before it")


def _shrunk(layer, rows: np.ndarray | None, cols: np.ndarray | None):
    """A copy of ``layer`` keeping output units ``rows`` and inputs ``cols`` (None: all)."""
    w = layer.weight.data
    xp = backend.device_of(w).xp
    if rows is not None:
        w = w[xp.asarray(rows)]
    if cols is not None:
        w = w[:, xp.asarray(cols)]
    new = resize_layer(layer, w.shape)
    with no_grad():
        new.weight.data[...] = w
        if layer.bias is not None:
            new.bias.data[...] = layer.bias.data if rows is None else layer.bias.data[xp.asarray(rows)]
    return new


def prune_structured(model: nn.Module, amount: float, kinds: tuple = (nn.Linear, nn.Conv2d)) -> nn.Module:
    """A smaller copy of ``model`` without the ``amount`` fraction of hidden units (round(amount·n) of each layer,
    at least one kept) of the layers of the given ``kinds``, those with the smallest L1 norm of incoming weights.

    The next layer loses the matching inputs, so a removed unit whose output was 0 (zero weights and bias before
    a ReLU) leaves the outputs unchanged. The output layer is never pruned. For the MLP the config's sizes follow.
    """
    amount = _check_amount(amount, "prune_structured")
    chain = structured_chain(model)
    pruned = copy.deepcopy(model)
    remove_masks(pruned)
    modules = dict(pruned.named_modules())
    layers = [modules[name] for name in chain]
    if any(isinstance(m, (QuantizedLinear, QuantizedConv2d)) for m in layers):
        raise TypeError("structured pruning works on float layers: prune first, then quantize")
    if any(getattr(m, "groups", 1) != 1 for m in layers):
        raise ValueError("structured pruning of grouped convolutions is not supported (groups != 1)")
    cols = None
    for i, (name, layer) in enumerate(zip(chain, layers)):
        rows = None
        if i < len(layers) - 1 and isinstance(layer, kinds):
            units = layer.weight.shape[0]
            n_keep = max(units - round(amount * units), 1)
            rows = np.sort(np.argsort(-_unit_scores(layer, cols), kind="stable")[:n_keep])
        layers[i] = _shrunk(layer, rows, cols)
        replace_module(pruned, name, layers[i])
        cols = None if rows is None else _input_columns(layer, layers[i + 1], rows)
    if hasattr(pruned, "config") and hasattr(pruned.config, "sizes"):  # the copy's own config (deep-copied)
        pruned.config.sizes = (pruned.config.sizes[0], *(m.weight.shape[0] for m in layers))
    return pruned


def prune_neurons(model: nn.Module, amount: float) -> nn.Module:
    """``prune_structured`` of the hidden Linear layers only (neurons)."""
    return prune_structured(model, amount, kinds=(nn.Linear,))


def prune_channels(model: nn.Module, amount: float) -> nn.Module:
    """``prune_structured`` of the Conv2d layers only (output channels, and the next layer's inputs)."""
    return prune_structured(model, amount, kinds=(nn.Conv2d,))


@no_grad()
def count_macs(model: nn.Module, example) -> int:
    """Multiply-accumulates of one forward of ``example`` through the Linear and Conv2d layers (float or int8):
    the FLOPs that matter, counted from the shapes each layer actually sees."""
    counted = (nn.Linear, nn.Conv2d, QuantizedLinear, QuantizedConv2d)
    total = [0]

    def count(module, inputs, out):
        w = module.weight_q if isinstance(module, (QuantizedLinear, QuantizedConv2d)) else module.weight
        per_output = math.prod(w.shape[1:])  # in_features, or C/groups·kh·kw
        total[0] += out.numel() * per_output

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, counted)]
    was_training = model.training
    try:
        model.eval()(example if isinstance(example, Tensor) else Tensor(np.asarray(example)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total[0]


def amount_for_macs(model: nn.Module, example, target: float, kinds: tuple = (nn.Linear, nn.Conv2d)) -> float:
    """The smallest ``prune_structured`` amount (to 1/1000) whose model needs at most ``target`` (a fraction)
    of ``model``'s multiply-accumulates on ``example``."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"amount_for_macs: target must be a fraction in (0, 1], got {target}")
    full = count_macs(model, example)
    lo, hi = 0.0, 0.999
    if count_macs(prune_structured(model, hi, kinds), example) > target * full:
        raise ValueError(f"amount_for_macs: even removing 99.9% of the units leaves more than {target:.0%} of the "
                         "multiply-accumulates")
    while hi - lo > 1e-3:
        mid = (lo + hi) / 2
        if count_macs(prune_structured(model, mid, kinds), example) <= target * full:
            hi = mid
        else:
            lo = mid
    return hi
