"""What every exporter shares: its error and warning types, the optional-dependency gate, the GELU drift probe."""

from __future__ import annotations

import importlib

import numpy as np


class ExportError(ValueError):
    """A model that cannot be exported as asked; the message names what and why."""


class ExportWarning(UserWarning):
    """An export that runs but is not exact (e.g. an exact-GELU model for a runtime that computes the tanh form)."""


def require(module: str, extra: str):
    """``module`` imported, or an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this export needs the {module!r} package: pip install 'ember[{extra}]'") from exc


def gelu_drift(model, tokens: int | None = None, seed: int = 0) -> dict:
    """How far a GPT's logits move when its GELU is computed in the tanh form instead of the exact one.

    Measured on random ids filling the context (the model is left as it was): the largest absolute change, the
    largest logit magnitude for scale, and at how many positions the most likely token changes.
    """
    from ...autograd import no_grad
    from ...nn import GELU

    tokens = tokens or model.config.block_size
    ids = np.random.default_rng(seed).integers(0, model.config.vocab_size, size=(1, tokens))
    gelus = [m for m in model.modules() if isinstance(m, GELU)]
    saved = [g.approximate for g in gelus]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            exact = model(ids).numpy()[0].astype(np.float64)
            for g in gelus:
                g.approximate = "tanh"
            approx = model(ids).numpy()[0].astype(np.float64)
    finally:
        for g, a in zip(gelus, saved):
            g.approximate = a
        model.train(was_training)
    return {"tokens": tokens, "max_abs": float(np.abs(exact - approx).max()), "scale": float(np.abs(exact).max()),
            "argmax_changed": int((exact.argmax(-1) != approx.argmax(-1)).sum())}


def check_single_stream_gpt(model, export: str, architecture: str, not_a_gpt: str):
    """The checks every GPT-only format shares: an ember GPT (``not_a_gpt`` says what else to do), with one
    residual stream (hyper-connections mix n streams with per-token maps no single-stream graph can hold)."""
    from ...models.gpt import GPT

    if not isinstance(model, GPT):
        raise ExportError(f"{export} export: expected an ember GPT, got {type(model).__name__} ({not_a_gpt})")
    config = model.config
    if config.residual != "plain":
        raise ExportError(
            f"{export} export: the model has hyper-connections (residual={config.residual!r}, {config.streams} "
            f"streams); {architecture} has one residual stream, and the per-token maps that mix the streams cannot "
            "be folded into its weights. Export it with --format onnx, which carries the hyper-connections.")
    return config


def head_is_tied(model) -> bool:
    """Whether a GPT's output head computes with its token embedding's matrix: the same parameter, or (an int8
    model, ``ember compress --quantize``) the same int8 codes and scales. A quantized layer's ``weight`` is a new
    dequantized array at each access, so identity of ``weight`` alone would call every int8 head untied."""
    head, wte = model.lm_head, model.transformer["wte"]
    if head.weight is wte.weight:
        return True
    codes = getattr(head, "weight_q", None)
    return codes is not None and codes is getattr(wte, "weight_q", None) and \
        head.weight_scale is getattr(wte, "weight_scale", None)


def module_tensors(model, names) -> dict:
    """The tensor behind each dotted parameter name, read through its module's attribute, not
    ``named_parameters()``: an int8 layer holds its weight as buffers and computes with its dequantized ``weight``,
    which is what an export writes. None where the module has no such tensor (a bias-free Linear's bias)."""
    modules = dict(model.named_modules())
    out = {}
    for name in names:
        prefix, _, attr = name.rpartition(".")
        out[name] = getattr(modules[prefix], attr, None)
    return out
