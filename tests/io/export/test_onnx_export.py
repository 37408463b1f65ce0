"""ONNX export: every supported model, checked by onnx.checker (full check) and run in onnxruntime, gives ember's
outputs.

Tolerance: float32 graphs are compared with an absolute 1e-5 on outputs scaled to at most ~10 (the perturbed
weights below keep them there, and ``assert_matches`` checks the scale too, so the bound stays meaningful);
float64 graphs with 1e-9. Models are perturbed away from their initialisation ("trained-like": larger random
weights, non-zero biases, LayerNorm gains and hyper-connection maps) so that no term of the forward is trivial.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export tests need onnx: pip install 'ember[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime: pip install 'ember[onnx]'")

import ember  # noqa: E402
from ember.io.export.common import ExportError, ExportWarning  # noqa: E402
from ember.io.export.onnx import NO_DOUBLE_KERNEL, export_onnx, onnx_io_names  # noqa: E402
from ember.kan.baked import BakedKAN  # noqa: E402
from ember.models import KAN, MLP, LeNet5  # noqa: E402
from ember.models.gpt import GPT, GPTConfig  # noqa: E402
from ember.nn.layers import ACTIVATIONS  # noqa: E402

F32_ATOL, F64_ATOL = 1e-5, 1e-9
MAX_SCALE = 20.0  # outputs larger than this would make an absolute 1e-5 a stricter test than float32 allows


# ------------------------------------------------------------------------------------------------ helpers


def session(path) -> ort.InferenceSession:
    """onnx.checker's full check of the file, then an onnxruntime CPU session on it."""
    onnx.checker.check_model(str(path), full_check=True)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the error tests' failures are expected: keep them off stderr
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(path, feed: dict) -> np.ndarray:
    return session(path).run(None, feed)[0]


def assert_matches(actual: np.ndarray, expected: np.ndarray, atol: float = F32_ATOL) -> float:
    """Same shape and dtype class, values within atol of non-trivial size; returns the max difference."""
    assert actual.shape == expected.shape, f"onnxruntime gave {actual.shape}, ember {expected.shape}"
    scale = float(np.abs(expected).max())
    assert 0.1 < scale < MAX_SCALE, f"reference outputs of scale {scale} make the comparison trivial or unfair"
    diff = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max())
    assert diff <= atol, f"max |onnxruntime - ember| = {diff:.3g} > {atol:.1g} (outputs up to {scale:.3g})"
    return diff


def perturb(model, seed: int, spread: float = 1.0) -> None:
    """Move every parameter away from its initialisation: random weights of ~unit gain, non-zero biases, LayerNorm
    gains around 1, and hyper-connection maps away from their identity-like start."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        shape, leaf = p.shape, name.rsplit(".", 1)[-1]
        if ".hc_" in name:
            values = rng.normal(0, 0.5, shape) if leaf == "phi" else p.numpy() + rng.normal(0, 0.4, shape)
            if leaf == "alpha":
                values = rng.uniform(0.3, 0.8, shape)
        elif ".ln" in name and leaf == "weight":
            values = 1.0 + rng.normal(0, 0.3, shape)
        elif leaf == "bias" or len(shape) < 2:
            values = rng.normal(0, 0.3, shape)
        elif "wte" in name or "wpe" in name:
            values = rng.normal(0, 0.6, shape)
        else:  # (out, in, ...) weights: fan-in scaled
            values = rng.normal(0, spread / np.sqrt(np.prod(shape[1:])), shape)
        p.data[...] = values.astype(p.dtype)


def ember_out(model, x) -> np.ndarray:
    with ember.no_grad():
        return model(ember.tensor(x) if x.dtype.kind == "f" else x).numpy()


# ------------------------------------------------------------------------------------------------ MLP, LeNet-5


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_mlp_matches_ember(tmp_path, seed, batch):
    model = MLP(sizes=(40, 32, 24, 7)).eval()
    perturb(model, seed)
    path = export_onnx(model, tmp_path / "mlp.onnx")
    x = np.random.default_rng(100 + seed).normal(0, 1.5, (batch, 40)).astype(np.float32)
    assert_matches(run(path, {"input": x}), ember_out(model, x))


def test_mnist_sized_mlp_with_dropout_exports_its_inference_forward(tmp_path):
    """The MNIST MLP (784-256-128-10) with dropout layers: dropout is off in the exported graph, as in eval()."""
    model = MLP(dropout=0.5).eval()
    perturb(model, 3)
    path = export_onnx(model, tmp_path / "mlp.onnx")
    x = np.random.default_rng(3).uniform(0, 1, (3, 784)).astype(np.float32)
    assert_matches(run(path, {"input": x}), ember_out(model, x))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_mlp_activation_matches_ember(tmp_path, name):
    """Inputs spread to ±8 cross every kink and cut-off (ReLU6 at 6, Hardtanh at ±1, Hardswish at ±3)."""
    model = MLP(sizes=(16, 24, 5), activation=name).eval()
    perturb(model, 4, spread=4.0)
    model.net[-1].weight.data[...] *= 0.2  # large activations in, outputs of moderate size out
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    x = np.random.default_rng(4).uniform(-2, 2, (3, 16)).astype(np.float32)
    hidden = x @ model.net[1].weight.numpy().T + model.net[1].bias.numpy()
    assert hidden.min() < -3 and hidden.max() > 6, "the inputs do not reach the activation's kinks"
    assert_matches(run(path, {"input": x}), ember_out(model, x))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("batch", [1, 3])
def test_lenet_matches_ember(tmp_path, seed, batch):
    model = LeNet5().eval()
    perturb(model, seed)
    path = export_onnx(model, tmp_path / "lenet.onnx")
    x = np.random.default_rng(200 + seed).uniform(0, 1, (batch, 1, 28, 28)).astype(np.float32)
    assert_matches(run(path, {"input": x}), ember_out(model, x))


def test_lenet_with_three_channels(tmp_path):
    model = LeNet5(in_channels=3, num_classes=4).eval()
    perturb(model, 5)
    path = export_onnx(model, tmp_path / "lenet3.onnx")
    x = np.random.default_rng(5).uniform(0, 1, (2, 3, 28, 28)).astype(np.float32)
    assert_matches(run(path, {"input": x}), ember_out(model, x))


# ------------------------------------------------------------------------------------------------ KAN


def trained_kan(seed: int, spline_order: int = 3, uniform: bool = True, dtype=np.float32) -> KAN:
    """A KAN (5 -> 6 -> 3) with random spline and base weights; ``uniform=False`` adapts the second layer's
    knots to its inputs (a non-uniform grid, ember's de Boor path)."""
    ember.manual_seed(seed)
    model = KAN(widths=(5, 6, 3), grid_size=5, spline_order=spline_order)
    perturb(model, seed, spread=2.0)
    if dtype == np.float64:
        model.double()
    if not uniform:
        x = ember.tensor(np.random.default_rng(seed).uniform(-1.5, 1.5, (64, 5)).astype(dtype))
        with ember.no_grad():
            model.layers[1].update_grid(model.layers[0](x))
        assert not model.layers[1].uniform_grid
    return model.eval()


def kan_inputs(baked: BakedKAN, rows: int, seed: int) -> np.ndarray:
    """Random inputs inside and outside the grid range (-1, 1)."""
    return np.random.default_rng(seed).uniform(-1.6, 1.6, (rows, baked.widths[0])).astype(np.float32)


def knot_inputs(baked: BakedKAN) -> np.ndarray:
    """Every knot of the first layer's grid as an input (one row per knot: on the grid's ends, its interior
    knots, the extended knots beyond the range, and the last knot, past which every basis is 0), then inputs far
    outside the extended grid and between the range's end and the first or last knot."""
    grid = baked.layers[0].grid  # (in, G + 2k + 1)
    lo, hi = grid[:, :1], grid[:, -1:]
    far = np.concatenate([lo - 5.0, hi + 5.0, (lo + grid[:, 1:2]) / 2, (hi + grid[:, -2:-1]) / 2], axis=1)
    return np.concatenate([grid, far], axis=1).T.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_baked_kan_matches_ember(tmp_path, seed, batch):
    baked = BakedKAN.from_model(trained_kan(seed))
    path = export_onnx(baked, tmp_path / "kan.onnx")
    x = kan_inputs(baked, batch, seed)
    assert_matches(run(path, {"input": x}), baked(x))


@pytest.mark.parametrize("spline_order", [1, 2, 3])
@pytest.mark.parametrize("uniform", [True, False], ids=["uniform-grid", "adapted-grid"])
def test_kan_on_knots_and_outside_the_grid(tmp_path, spline_order, uniform):
    """Inputs on every knot (ember's half-open intervals), and outside the grid and the extended knots."""
    baked = BakedKAN.from_model(trained_kan(7, spline_order, uniform))
    path = export_onnx(baked, tmp_path / "kan.onnx")
    x = np.concatenate([knot_inputs(baked), kan_inputs(baked, 8, 7)])
    got, want = run(path, {"input": x}), baked(x)
    assert_matches(got, want)
    beyond = (x >= baked.layers[0].grid[:, -1]).all(axis=1)  # past the last knot: only the SiLU terms remain
    assert beyond.sum() >= 2


def test_kan_beyond_the_extended_knots_keeps_only_the_base_branch(tmp_path):
    """An independent check of the basis outside [t_0, t_last): a one-layer KAN's output there is w_b·silu(x)."""
    model = trained_kan(8)
    model.layers = ember.nn.ModuleList([model.layers[0]])
    model.config.widths = model.config.widths[:2]
    path = export_onnx(model, tmp_path / "kan1.onnx")
    grid = model.layers[0].grid.numpy()
    x = np.concatenate([grid[:, :1] - 0.25, grid[:, -1:], grid[:, -1:] + 0.5], axis=1).T.astype(np.float32)
    silu = x / (1 + np.exp(-x.astype(np.float64)))
    want = silu @ model.layers[0].effective_base_weight().astype(np.float64).T
    assert_matches(run(path, {"input": x}), want)


def test_trained_kan_is_baked_on_export(tmp_path):
    """A KAN (not baked) exports the graph of its baked form, which equals the KAN's own forward."""
    model = trained_kan(9, uniform=False)
    path = export_onnx(model, tmp_path / "kan.onnx")
    x = kan_inputs(BakedKAN.from_model(model), 6, 9)
    got = run(path, {"input": x})
    assert_matches(got, BakedKAN.from_model(model)(x))
    assert_matches(got, ember_out(model, x), atol=1e-4)  # the training forward sums in another order


# ------------------------------------------------------------------------------------------------ GPT


GPT_SHAPES = {
    "plain-exact-gelu": dict(residual="plain", gelu="none", bias=False),
    "plain-tanh-gelu-bias": dict(residual="plain", gelu="tanh", bias=True),
    "hc": dict(residual="hc", streams=3, gelu="tanh", bias=True),
    "mhc": dict(residual="mhc", streams=4, sinkhorn_iters=5, gelu="none", bias=False),
    "mhc2": dict(residual="mhc2", gelu="none", bias=True),
}


def trained_gpt(seed: int, dtype=np.float32, **shape) -> GPT:
    ember.manual_seed(seed)
    model = GPT(GPTConfig(block_size=12, vocab_size=23, n_layer=2, n_head=2, n_embd=16, **shape))
    perturb(model, seed)
    if dtype == np.float64:
        model.double()
    return model.eval()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shape", sorted(GPT_SHAPES))
def test_gpt_matches_ember_for_any_batch_and_length(tmp_path, shape, seed):
    """One file, batch 1 and 3, a short sequence and a full context: the batch and sequence axes are dynamic."""
    model = trained_gpt(seed, **GPT_SHAPES[shape])
    path = export_onnx(model, tmp_path / "gpt.onnx")
    sess = session(path)
    rng = np.random.default_rng(300 + seed)
    for batch in (1, 3):
        for length in (5, model.config.block_size):
            ids = rng.integers(0, model.config.vocab_size, (batch, length))
            assert_matches(sess.run(None, {"idx": ids})[0], ember_out(model, ids))


def test_gpt_graph_declares_symbolic_batch_and_sequence(tmp_path):
    model = trained_gpt(0)
    graph = onnx.load(str(export_onnx(model, tmp_path / "gpt.onnx"))).graph
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == onnx_io_names(model) == ("idx", "logits")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [d.dim_param for d in inp.type.tensor_type.shape.dim] == ["batch", "sequence"]
    dims = out.type.tensor_type.shape.dim
    assert [dims[0].dim_param, dims[1].dim_param, dims[2].dim_value] == ["batch", "sequence", 23]


def test_mhc_export_runs_the_configured_sinkhorn_iterations(tmp_path):
    """The parity above is sensitive to the iteration count: one more iteration moves ember's logits far more
    than the tolerance, so a graph with another count would fail it."""
    model = trained_gpt(0, **GPT_SHAPES["mhc"])
    ids = np.random.default_rng(0).integers(0, 23, (2, 12))
    path = export_onnx(model, tmp_path / "gpt.onnx")
    want = ember_out(model, ids)
    assert_matches(run(path, {"idx": ids}), want)
    for block in model.transformer["h"]:
        for hc in (block.hc_attn, block.hc_mlp):
            hc.sinkhorn_iters += 1
    assert np.abs(ember_out(model, ids) - want).max() > 100 * F32_ATOL


def test_gpt_head_is_tied_to_the_one_stored_embedding(tmp_path):
    model = trained_gpt(1)
    proto = onnx.load(str(export_onnx(model, tmp_path / "gpt.onnx")))
    c = model.config
    shapes = [tuple(i.dims) for i in proto.graph.initializer]
    assert shapes.count((c.vocab_size, c.n_embd)) + shapes.count((c.n_embd, c.vocab_size)) == 1
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["ember.model"] == "GPT" and '"block_size": 12' in meta["ember.config"]
    assert proto.opset_import[0].version == 20


def test_an_int8_gpt_exports_the_model_it_computes_with_its_head_still_tied(tmp_path):
    """``ember compress --quantize int8``: the graph holds the dequantized matrices the int8 model computes with,
    and its head, which shares the embedding's int8 codes, reads the one stored embedding."""
    from ember.compress.quant import quantize_model

    model = quantize_model(trained_gpt(2))
    path = export_onnx(model, tmp_path / "gpt.onnx")
    ids = np.random.default_rng(2).integers(0, 23, (2, 12))
    assert_matches(run(path, {"idx": ids}), ember_out(model, ids))
    shapes = [tuple(i.dims) for i in onnx.load(str(path)).graph.initializer]
    assert shapes.count((23, 16)) + shapes.count((16, 23)) == 1


def test_trained_char_model_matches(tmp_path, char_lm):
    """The character-level GPT trained on Tiny Shakespeare (the GGUF tests' model) on a line of text."""
    model, tokenizer = char_lm
    path = export_onnx(model, tmp_path / "char.onnx")
    ids = np.array([tokenizer.encode("ROMEO:\nWhat light through yonder window breaks?")[:40]])
    want = ember_out(model, ids)
    diff = float(np.abs(run(path, {"idx": ids}) - want).max())
    assert diff <= F32_ATOL * max(1.0, float(np.abs(want).max()) / 10), diff  # 1e-5 per 10 units of logit


def test_sequence_longer_than_the_context_fails_in_onnxruntime(tmp_path):
    """ember raises a ValueError; the graph cannot, and onnxruntime's Gather refuses position block_size."""
    model = trained_gpt(0)
    sess = session(export_onnx(model, tmp_path / "gpt.onnx"))
    ids = np.zeros((1, model.config.block_size + 1), dtype=np.int64)
    with pytest.raises(ValueError, match="longer than the context"):
        model(ids)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                       match=r"position_embedding.*out of data bounds, idx=12"):
        sess.run(None, {"idx": ids})


# ------------------------------------------------------------------------------------------------ dtypes


def test_float64_models_export_as_float64_where_onnxruntime_can(tmp_path):
    mlp = MLP(sizes=(12, 9, 4), activation="tanh")
    perturb(mlp, 0)
    cases = [(mlp.double().eval(), np.random.default_rng(0).normal(0, 1, (3, 12)), "input"),
             (BakedKAN.from_model(trained_kan(1, uniform=False, dtype=np.float64)),
              np.random.default_rng(1).uniform(-1.6, 1.6, (3, 5)), "input"),
             (trained_gpt(2, np.float64, **GPT_SHAPES["hc"]), np.random.default_rng(2).integers(0, 23, (3, 7)), "idx"),
             (trained_gpt(3, np.float64, residual="mhc", gelu="tanh"), np.random.default_rng(3).integers(0, 23, (2, 9)),
              "idx")]
    for i, (model, x, name) in enumerate(cases):
        path = export_onnx(model, tmp_path / f"m{i}.onnx")
        assert onnx.load(str(path)).graph.input[0].type.tensor_type.elem_type == (
            onnx.TensorProto.INT64 if name == "idx" else onnx.TensorProto.DOUBLE)
        got = run(path, {name: x})
        assert got.dtype == np.float64
        assert_matches(got, model(x) if isinstance(model, BakedKAN) else ember_out(model, x), atol=F64_ATOL)


@pytest.mark.parametrize("model_kind, missing", [("lenet", "Conv"), ("gpt-exact-gelu", "Gelu(none)"),
                                                 ("mlp-elu", "Elu")])
def test_float64_model_without_double_kernels_is_cast_to_float32_with_a_warning(tmp_path, model_kind, missing):
    model = {"lenet": lambda: LeNet5(), "gpt-exact-gelu": lambda: trained_gpt(0, gelu="none"),
             "mlp-elu": lambda: MLP(sizes=(8, 6, 3), activation="elu")}[model_kind]().double().eval()
    assert missing in NO_DOUBLE_KERNEL
    with pytest.warns(ExportWarning, match=rf"float64 .* exported as float32.*{re.escape(missing)}"):
        path = export_onnx(model, tmp_path / "m.onnx")
    inp = onnx.load(str(path)).graph.input[0]
    assert inp.name == "idx" or inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    with pytest.raises(ExportError, match=rf"no float64 kernel for {re.escape(missing)}"):
        export_onnx(model, tmp_path / "m64.onnx", dtype="float64")
    assert not (tmp_path / "m64.onnx").exists()


def test_dtype_float32_casts_a_float64_model(tmp_path):
    model = MLP(sizes=(10, 8, 3)).double().eval()
    perturb(model, 6)
    path = export_onnx(model, tmp_path / "m.onnx", dtype="f32")
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = np.random.default_rng(6).normal(0, 1, (3, 10))
    assert_matches(run(path, {"input": x.astype(np.float32)}), ember_out(model, x))


def test_bad_dtype_and_opset_are_refused(tmp_path):
    model = MLP(sizes=(4, 3))
    with pytest.raises(ValueError, match="dtype must be None, 'float32' or 'float64', got 'f16'"):
        export_onnx(model, tmp_path / "m.onnx", dtype="f16")
    with pytest.raises(ValueError, match="opset 17 is too old.*opset >= 20"):
        export_onnx(model, tmp_path / "m.onnx", opset=17)
    assert not (tmp_path / "m.onnx").exists()


def test_newer_opset(tmp_path):
    model = trained_gpt(4, gelu="tanh")
    path = export_onnx(model, tmp_path / "gpt.onnx", opset=21)
    assert onnx.load(str(path)).opset_import[0].version == 21
    ids = np.random.default_rng(4).integers(0, 23, (2, 6))
    assert_matches(run(path, {"idx": ids}), ember_out(model, ids))


# ------------------------------------------------------------------------------------------------ errors, files


def test_unsupported_model_is_a_type_error_listing_the_supported_ones(tmp_path):
    with pytest.raises(TypeError, match=r"cannot export a ember\.nn\.layers\.linear\.Linear; supported models: "
                                        r".*MLP.*LeNet5.*BakedKAN.*KAN.*GPT"):
        export_onnx(ember.nn.Linear(3, 2), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="cannot export a builtins.str"):
        onnx_io_names("model")


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'ember\[onnx\]'"):
        export_onnx(MLP(sizes=(4, 3)), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_io_names_match_the_graph(tmp_path):
    for model in (MLP(sizes=(4, 3)), LeNet5(), KAN(widths=(3, 2)), BakedKAN.from_model(KAN(widths=(3, 2)))):
        graph = onnx.load(str(export_onnx(model, tmp_path / "m.onnx"))).graph
        assert (graph.input[0].name, graph.output[0].name) == onnx_io_names(model)
        assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_export_replaces_the_file_atomically(tmp_path):
    """A new export replaces the old file whole and leaves no temporary behind; a failed one leaves it alone."""
    target = tmp_path / "sub" / "model.onnx"
    export_onnx(MLP(sizes=(4, 3)), target)
    model = MLP(sizes=(6, 5, 2)).eval()
    assert export_onnx(model, target) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]
    before = target.read_bytes()
    with pytest.raises(TypeError):
        export_onnx(object(), target)
    assert target.read_bytes() == before
    x = np.ones((2, 6), dtype=np.float32)
    np.testing.assert_allclose(run(target, {"input": x}), ember_out(model, x), atol=F32_ATOL)
