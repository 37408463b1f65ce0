"""Load a Hugging Face GPT-2 folder (what ``save_pretrained`` writes, or ember's HF export) as an ember GPT.

GPT-2 is nanoGPT's architecture with other habits: its Linear layers are ``Conv1D`` (weights stored (in, out),
the transpose of ember's (out, in)), every Linear and LayerNorm has a bias, the head is tied to the token
embedding, and its GELU is chosen by ``activation_function`` ("gelu_new", the tanh form, by default). The table
``gpt2_parameter_table`` maps each ember parameter to its GPT-2 name and says which are transposed; the importer
and the exporter both walk it.

What an ember GPT cannot compute exactly is refused with an error naming the file, the key and its value: another
LayerNorm epsilon, an MLP width other than 4 x n_embd, attention scaled by layer, an untied head that differs
from the embedding, cross-attention. Reads only local files (no hub downloads) and only safetensors (no pickles).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError
from .safetensors_io import read_safetensors

CONFIG_JSON = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
GPT2_ARCHITECTURES = ("GPT2LMHeadModel", "GPT2Model")
GELU_FORMS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh"}
LAYER_NORM_EPS = 1e-5  # ember's LayerNorm in GPT (GPTConfig has no epsilon)
# settings of a GPT-2 config that ember's GPT cannot honour, with the value it needs
REQUIRED_SETTINGS = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
                     "reorder_and_upcast_attn": False, "add_cross_attention": False}
# buffers older transformers saved beside the weights (the causal mask): not parameters, ignored as transformers does
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def is_hf_folder(folder: str | os.PathLike) -> bool:
    """A Hugging Face model folder (it has config.json); an ``ember train gpt`` run folder has none."""
    return (Path(folder) / CONFIG_JSON).is_file()


def gpt2_parameter_table(n_layer: int) -> list[tuple[str, str, bool]]:
    """(ember name, GPT-2 name, transposed) for every parameter of a GPT with biases. The names are the same
    (nanoGPT kept GPT-2's, with GPT2LMHeadModel's ``transformer.`` prefix); the Conv1D weights are transposed.
    The head (``lm_head.weight``) is tied to wte, so it is not listed."""
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in range(n_layer):
        for layer in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            names += [f"transformer.h.{i}.{layer}.weight", f"transformer.h.{i}.{layer}.bias"]
    names += ["transformer.ln_f.weight", "transformer.ln_f.bias"]
    return [(name, name, ".c_" in name and name.endswith(".weight")) for name in names]


def load_hf_gpt2(folder: str | os.PathLike, dtype=np.float32, bias: bool | str = "auto"):
    """(GPT, tokenizer or None) of a Hugging Face GPT-2 folder.

    ``bias``: True keeps GPT-2's biases; False drops them (all must be zero); "auto" (default) drops them only
    when every one is exactly zero, so a bias-free ember model exported and imported comes back as it was.
    The tokenizer comes from tokenizer.json or vocab.json + merges.txt (``ember.text.hf_tokenizer``); its ids
    must match the model's vocabulary. Nothing is built until every file has been read and checked.
    """
    from ..models.gpt import GPT
    from ..text.hf_tokenizer import load_hf_tokenizer

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder (expected a Hugging Face GPT-2 folder with {CONFIG_JSON})")
    config_path = folder / CONFIG_JSON
    hf_config = _read_config(config_path)
    config = gpt_config_from_hf(hf_config, config_path)
    weights = _read_weights(folder)
    state = _ember_state(weights, config, hf_config, folder, dtype)
    config.bias = _use_bias(state, bias, folder)
    if not config.bias:
        state = {k: v for k, v in state.items() if not k.endswith(".bias")}
    tokenizer = load_hf_tokenizer(folder)
    if tokenizer is not None and tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"{folder}: the tokenizer has {tokenizer.vocab_size} ids but {CONFIG_JSON} vocab_size "
                              f"is {config.vocab_size}")
    model = GPT(config)
    model.to(dtype=np.dtype(dtype))
    model.load_state_dict(state, strict=True)
    return model.eval(), tokenizer


def gpt_config_from_hf(hf: dict, source: str | os.PathLike = CONFIG_JSON):
    """The ``GPTConfig`` of a GPT-2 config.json (dropout 0: an imported model is for inference or fine-tuning
    with dropout chosen anew); refuses settings ember cannot compute, naming the key and its value."""
    from ..models.gpt import GPTConfig

    model_type = hf.get("model_type")
    if model_type != "gpt2":
        raise CheckpointError(f"{source}: model_type {model_type!r} is not supported (ember imports GPT-2: "
                              "expected 'gpt2')")
    architectures = hf.get("architectures") or ["GPT2LMHeadModel"]
    unknown = [a for a in architectures if a not in GPT2_ARCHITECTURES]
    if unknown:
        raise CheckpointError(f"{source}: architectures {unknown} are not supported (expected "
                              f"{' or '.join(GPT2_ARCHITECTURES)})")
    sizes = {key: _positive_int(hf, key, source) for key in ("vocab_size", "n_positions", "n_embd", "n_layer",
                                                               "n_head")}
    n_inner = hf.get("n_inner")
    if n_inner is not None and n_inner != 4 * sizes["n_embd"]:
        raise CheckpointError(f"{source}: n_inner = {n_inner} is not supported (ember's MLP is 4 x n_embd = "
                              f"{4 * sizes['n_embd']} wide; expected null or that)")
    activation = hf.get("activation_function", "gelu_new")
    if activation not in GELU_FORMS:
        raise CheckpointError(f"{source}: activation_function {activation!r} is not supported (expected one of "
                              f"{', '.join(GELU_FORMS)})")
    eps = hf.get("layer_norm_epsilon", LAYER_NORM_EPS)
    if not (isinstance(eps, (int, float)) and math.isclose(eps, LAYER_NORM_EPS, rel_tol=1e-6)):
        raise CheckpointError(f"{source}: layer_norm_epsilon = {eps!r} is not supported (ember's GPT normalises "
                              f"with eps {LAYER_NORM_EPS})")
    for key, needed in REQUIRED_SETTINGS.items():
        if key in hf and hf[key] != needed:
            raise CheckpointError(f"{source}: {key} = {json.dumps(hf[key])} is not supported (ember's GPT computes "
                                  f"{key} = {json.dumps(needed)})")
    if sizes["n_embd"] % sizes["n_head"]:
        raise CheckpointError(f"{source}: n_embd {sizes['n_embd']} is not divisible by n_head {sizes['n_head']}")
    return GPTConfig(block_size=sizes["n_positions"], vocab_size=sizes["vocab_size"], n_layer=sizes["n_layer"],
                     n_head=sizes["n_head"], n_embd=sizes["n_embd"], dropout=0.0, bias=True,
                     gelu=GELU_FORMS[activation])


def _positive_int(hf: dict, key: str, source) -> int:
    value = hf.get(key)
    if type(value) is not int or value <= 0:
        raise CheckpointError(f"{source}: {key} must be a positive integer, found {value!r}")
    return value


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (a Hugging Face model folder has a {CONFIG_JSON})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable JSON file: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object of settings, found {type(config).__name__}")
    return config


def _read_weights(folder: Path) -> dict[str, tuple[np.ndarray, Path]]:
    """name -> (array, file it came from), from model.safetensors or the shards its index lists."""
    from safetensors import SafetensorError

    index = folder / WEIGHTS_INDEX
    if (folder / WEIGHTS).is_file():
        files = [folder / WEIGHTS]
    elif index.is_file():
        files = _shards(index)
    else:
        others = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt*"))
        hint = f" ({', '.join(others)} need PyTorch to read: convert them to safetensors)" if others else ""
        raise CheckpointError(f"{folder}: no {WEIGHTS} (or {WEIGHTS_INDEX}){hint}")
    weights = {}
    for path in files:
        try:
            arrays, _ = read_safetensors(path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file: {exc}") from None
        weights.update((name, (array, path)) for name, array in arrays.items())
    return weights


def _shards(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{index}: not a safetensors index (expected an object with a weight_map): "
                              f"{exc!r}") from None
    missing = [n for n in names if not (index.parent / n).is_file()]
    if missing:
        raise CheckpointError(f"{index}: lists shard {missing[0]}, which is not in {index.parent}")
    return [index.parent / n for n in names]


def _ember_state(weights: dict, config, hf: dict, folder: Path, dtype) -> dict[str, np.ndarray]:
    """ember's state dict (with biases) from GPT-2's tensors: names mapped, Conv1D weights transposed, shapes
    and the head checked, nothing unknown left over."""
    named = {_canonical(name): (*value, name) for name, value in weights.items()
             if not name.endswith(IGNORED_SUFFIXES)}
    state = {}
    for ours, theirs, transposed in gpt2_parameter_table(config.n_layer):
        if theirs not in named:
            raise CheckpointError(f"{folder}: missing weight {theirs!r} (a GPT-2 with n_layer={config.n_layer} has "
                                  "it)")
        array, path, _ = named.pop(theirs)
        expected = _hf_shape(ours, config)
        if tuple(array.shape) != expected:
            raise CheckpointError(f"{path}: weight {theirs!r} has shape {tuple(array.shape)}, expected {expected} "
                                  f"for {CONFIG_JSON}'s sizes")
        if array.dtype.kind != "f":
            raise CheckpointError(f"{path}: weight {theirs!r} is {array.dtype}, expected floating point")
        state[ours] = np.ascontiguousarray((array.T if transposed else array).astype(dtype, copy=False))
    head = named.pop("lm_head.weight", None)
    if head is not None:
        _check_tied_head(head, state["transformer.wte.weight"], hf, folder)
    elif hf.get("tie_word_embeddings") is False:
        raise CheckpointError(f"{folder}: {CONFIG_JSON} has tie_word_embeddings = false but there is no "
                              "'lm_head.weight'")
    if named:
        unexpected = sorted(original for _, _, original in named.values())
        path = next(iter(named.values()))[1]
        raise CheckpointError(f"{path}: unexpected weight{'s' if len(unexpected) > 1 else ''} "
                              f"{', '.join(map(repr, unexpected[:5]))}{' ...' if len(unexpected) > 5 else ''} "
                              "(not part of a GPT-2 language model that ember can load)")
    return state


def _canonical(name: str) -> str:
    """GPT2LMHeadModel's name of a tensor: GPT2Model (the hub's gpt2 files) saves without ``transformer.``."""
    if name.startswith(("transformer.", "lm_head.")):
        return name
    return f"transformer.{name}"


def _hf_shape(ours: str, config) -> tuple[int, ...]:
    c, v, t = config.n_embd, config.vocab_size, config.block_size
    shapes = {"wte.weight": (v, c), "wpe.weight": (t, c), "c_attn.weight": (c, 3 * c), "c_attn.bias": (3 * c,),
              "attn.c_proj.weight": (c, c), "c_fc.weight": (c, 4 * c), "c_fc.bias": (4 * c,),
              "mlp.c_proj.weight": (4 * c, c)}
    return next((shape for suffix, shape in shapes.items() if ours.endswith(suffix)), (c,))


def _check_tied_head(head: tuple, wte: np.ndarray, hf: dict, folder: Path) -> None:
    """ember's head is the token embedding: an lm_head.weight stored anyway must equal it."""
    array, path, _ = head
    if array.shape != wte.shape or not np.array_equal(array.astype(wte.dtype, copy=False), wte):
        tie = hf.get("tie_word_embeddings", True)
        differs = ("has another shape" if array.shape != wte.shape else
                   f"differs from it by up to {float(np.abs(array.astype(np.float64) - wte).max()):.3g}")
        raise CheckpointError(f"{path}: 'lm_head.weight' {differs} 'transformer.wte.weight' ({CONFIG_JSON} has "
                              f"tie_word_embeddings = {json.dumps(tie)}); ember's GPT ties its head to the token "
                              "embedding, so an untied head cannot be loaded")


def _use_bias(state: dict, bias: bool | str, folder: Path) -> bool:
    if bias not in (True, False, "auto"):
        raise ValueError(f"load_hf_gpt2: bias must be True, False or 'auto', got {bias!r}")
    nonzero = next((k for k, v in state.items() if k.endswith(".bias") and np.any(v)), None)
    if bias is False and nonzero:
        raise CheckpointError(f"{folder}: bias=False asked for, but {nonzero!r} is not zero (dropping it would "
                              "change the model)")
    return bias is True or (bias == "auto" and nonzero is not None)
