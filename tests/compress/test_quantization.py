"""int8 quantization: the arithmetic against hand-derived bounds and PyTorch, calibration, the int8 layers, QAT,
and quantized checkpoints (bit-identical outputs, ~4x smaller files)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember.compress import prepare_qat, quantize_model, save_compressed
from ember.compress.quant import (
    EPS,
    PercentileObserver,
    QuantizedLinear,
    activation_qparams,
    channel_scales,
    dequantize_per_channel,
    dequantize_per_tensor,
    fake_quantize,
    quantize_per_channel,
    quantize_per_tensor,
)
from ember.io import CheckpointError, load_model, save_checkpoint
from ember.models import GPT, KAN, MLP, GPTConfig, KANConfig, LeNet5

RNG = np.random.default_rng(0)


def weights_of_varied_channels() -> np.ndarray:
    """(6, 40) float32 rows whose magnitudes differ by up to 10^4, one with a single large outlier."""
    w = RNG.standard_normal((6, 40)).astype(np.float32) * np.logspace(-3, 1, 6, dtype=np.float32)[:, None]
    w[2, 7] = 50.0
    return w


def assert_within_half_a_step(values: np.ndarray, restored: np.ndarray, steps: np.ndarray) -> None:
    """|restored - values| <= step/2 for every element (plus float32 rounding of the product q·s)."""
    error = np.abs(restored.astype(np.float64) - values.astype(np.float64))
    bound = steps / 2 + np.abs(values.astype(np.float64)) * 2.0**-23
    assert (error <= bound).all(), float((error - bound).max())


# ----------------------------------------------------------------------------- weights


def test_weight_round_trip_errs_by_at_most_half_a_step():
    w = weights_of_varied_channels()
    scales = channel_scales(w)
    restored = dequantize_per_channel(quantize_per_channel(w, scales), scales)
    assert restored.dtype == np.float32
    assert_within_half_a_step(w, restored, np.broadcast_to(scales[:, None].astype(np.float64), w.shape))


def test_per_channel_scales_give_each_channel_its_own_range():
    w = weights_of_varied_channels()
    scales = channel_scales(w)
    np.testing.assert_array_equal(scales, (np.abs(w).max(axis=1).astype(np.float64) / 127).astype(np.float32))
    q = quantize_per_channel(w, scales)
    assert q.dtype == np.int8 and (np.abs(q).max(axis=1) == 127).all()  # every channel reaches the full range
    # the smallest channel's error is set by its own step, 10^4 times finer than the largest channel's
    small = np.abs(dequantize_per_channel(q, scales)[0] - w[0]).max()
    assert small <= scales[0] / 2 < scales[-1] / 1000


def test_per_channel_axis_of_a_convolution_weight():
    w = RNG.standard_normal((3, 2, 5, 5)).astype(np.float32) * np.array([1, 10, 100], np.float32)[:, None, None, None]
    scales = channel_scales(w, axis=0)
    np.testing.assert_array_equal(scales, (np.abs(w).reshape(3, -1).max(1).astype(np.float64) / 127).astype(np.float32))
    assert_within_half_a_step(w, dequantize_per_channel(quantize_per_channel(w, scales), scales),
                              np.broadcast_to(scales[:, None, None, None].astype(np.float64), w.shape))


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # deprecated in torch, still right
def test_int8_codes_equal_torch_quantize_per_channel(torch):
    w = weights_of_varied_channels()
    scales = channel_scales(w)
    expected = torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(scales.astype(np.float64)),
                                          torch.zeros(6, dtype=torch.int64), 0, torch.qint8).int_repr().numpy()
    np.testing.assert_array_equal(quantize_per_channel(w, scales), expected)


def test_an_all_zero_channel_gets_a_finite_scale_and_stays_exactly_zero():
    w = weights_of_varied_channels()
    w[4] = 0.0
    scales = channel_scales(w)
    assert scales[4] == np.float32(EPS) and np.isfinite(scales).all()
    restored = dequantize_per_channel(quantize_per_channel(w, scales), scales)
    assert not np.isnan(restored).any() and (restored[4] == 0).all()


# ----------------------------------------------------------------------------- activations


@pytest.mark.parametrize("lo, hi", [(-1.0, 3.0), (0.0, 5.5), (0.25, 2.0), (-4.0, -0.5), (-1e-3, 1e3)])
def test_activation_qparams_equal_torch_minmax_observer(torch, lo, hi):
    observer = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    observer(torch.tensor([lo, hi]))
    scale, zero_point = observer.calculate_qparams()
    got_scale, got_zero_point = activation_qparams(lo, hi)
    assert got_scale == pytest.approx(float(scale), rel=1e-7) and got_zero_point == int(zero_point)


def test_zero_point_by_hand_and_zero_is_exact():
    scale, zero_point = activation_qparams(-1.0, 3.0)  # 4/255 per level; -(-1)/(4/255) = 63.75 -> 64
    assert scale == pytest.approx(4 / 255, rel=1e-7) and zero_point == 64
    assert activation_qparams(0.0, 5.0)[1] == 0  # non-negative inputs (after a ReLU): zero is the lowest code
    assert activation_qparams(-5.0, -1.0)[1] == 255  # non-positive: zero is the highest
    x = ember.tensor(np.array([0.0, -1.0, 3.0, 1.234], np.float32))
    assert float(fake_quantize(x, scale, zero_point).data[0]) == 0.0


def test_activation_round_trip_errs_by_at_most_half_a_step_inside_the_range():
    x = RNG.uniform(-2.0, 7.0, 5000).astype(np.float32)
    scale, zero_point = activation_qparams(x.min(), x.max())
    codes = quantize_per_tensor(x, scale, zero_point)
    assert codes.min() >= 0 and codes.max() <= 255
    assert_within_half_a_step(x, dequantize_per_tensor(codes, scale, zero_point), np.full(x.shape, scale))


def test_all_zero_activations_give_a_finite_scale_and_zeros():
    scale, zero_point = activation_qparams(0.0, 0.0)
    assert scale == np.float32(EPS) and zero_point == 0
    out = fake_quantize(ember.zeros(4, 3), scale, zero_point)
    assert not np.isnan(out.numpy()).any() and (out.numpy() == 0).all()


# ----------------------------------------------------------------------------- fake quantization


def test_fake_quantize_per_tensor_equals_torch_with_a_straight_through_gradient(torch):
    x = RNG.uniform(-3.0, 9.0, (8, 16)).astype(np.float32)  # partly outside the range below: clipped there
    scale, zero_point = activation_qparams(-1.0, 4.0)
    cotangent = RNG.standard_normal(x.shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    expected = torch.fake_quantize_per_tensor_affine(xt, scale, zero_point, 0, 255)
    expected.backward(torch.from_numpy(cotangent))
    xe = ember.tensor(x, requires_grad=True)
    out = fake_quantize(xe, scale, zero_point)
    out.backward(ember.tensor(cotangent))
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())
    inside = (x >= -1.0 - scale / 2) & (x <= 4.0 + scale / 2)
    assert not inside.all() and inside.any()  # both cases occur: identity inside, zero outside
    np.testing.assert_array_equal(xe.grad.numpy()[inside], cotangent[inside])
    assert (xe.grad.numpy()[~inside] == 0).all()


def test_fake_quantize_per_channel_equals_torch(torch):
    x = (RNG.standard_normal((4, 3, 5)) * 3).astype(np.float32)
    scales = np.array([0.01, 0.02, 0.05], np.float32)
    zero_points = np.array([0, 3, -2], np.int32)
    cotangent = RNG.standard_normal(x.shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    expected = torch.fake_quantize_per_channel_affine(xt, torch.from_numpy(scales), torch.from_numpy(zero_points), 1,
                                                      -127, 127)
    expected.backward(torch.from_numpy(cotangent))
    xe = ember.tensor(x, requires_grad=True)
    out = fake_quantize(xe, scales, zero_points, -127, 127, axis=1)
    out.backward(ember.tensor(cotangent))
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())


def test_fake_quantize_names_bad_arguments():
    x = ember.zeros(2, 3)
    with pytest.raises(ValueError, match=r"per-channel scale and zero_point need shape \(3,\)"):
        fake_quantize(x, np.ones(2), np.zeros(2), axis=1)
    with pytest.raises(ValueError, match="pass axis= for per-channel values"):
        fake_quantize(x, np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="scales must be positive"):
        fake_quantize(x, 0.0, 0)


# ----------------------------------------------------------------------------- calibration and models


def layer_inputs(model, x) -> dict[str, np.ndarray]:
    """The float input of each Linear/Conv2d of ``model`` on x, captured with forward pre-hooks."""
    seen = {}
    handles = [m.register_forward_pre_hook(lambda mod, inputs, n=name: seen.__setitem__(n, inputs[0].numpy()))
               for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with ember.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


def test_calibration_on_one_batch_sets_each_input_range_to_what_that_layer_saw():
    model = LeNet5().eval()
    x = ember.tensor(RNG.standard_normal((5, 1, 28, 28)).astype(np.float32))
    inputs = layer_inputs(model, x)
    qmodel = quantize_model(model, calibration_batches=[(x, np.zeros(5, np.int64))])
    assert set(inputs) == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    for name, seen in inputs.items():
        layer = getattr(qmodel, name)
        scale, zero_point = activation_qparams(seen.min(), seen.max())
        assert float(layer.input_scale.data) == scale and int(layer.input_zero_point.data) == zero_point
    assert int(qmodel.fc1.input_zero_point.data) == 0  # after a ReLU: no negative inputs


def test_percentile_observer_on_one_batch_is_that_batchs_percentiles():
    x = RNG.standard_normal(10_000).astype(np.float32)
    x[:3] = [40.0, -35.0, 60.0]  # outliers that min/max would have to cover
    observer = PercentileObserver(99.9)
    observer.observe(x)
    lo, hi = observer.range()
    assert (lo, hi) == pytest.approx(tuple(np.percentile(x, [0.1, 99.9])), rel=1e-12)
    assert observer.qparams()[0] < activation_qparams(x.min(), x.max())[0] / 10


def test_int8_linear_output_within_the_bound_set_by_its_weight_steps():
    """|y_q - y|_j <= Σ_i |x_i|·s_j/2 for weight-only int8 (each weight errs by at most s_j/2)."""
    layer = nn.Linear(30, 7)
    x = ember.tensor(RNG.standard_normal((9, 30)).astype(np.float32))
    q = QuantizedLinear.from_float(layer)
    with ember.no_grad():
        diff = np.abs(q(x).numpy().astype(np.float64) - layer(x).numpy())
    bound = np.abs(x.numpy()).sum(axis=1, keepdims=True) * q.weight_scale.numpy()[None, :] / 2
    assert (diff <= bound * (1 + 1e-5) + 1e-6).all()
    assert q.weight.dtype == np.float32 and q.weight_q.dtype == np.int8


def test_int8_kan_layer_computes_the_float_layer_with_coefficients_within_half_a_step():
    kan = KAN(KANConfig(widths=(3, 4))).eval()
    layer = kan.layers[0]
    qkan = quantize_model(kan)
    qlayer = qkan.layers[0]
    coefficients = layer.scaled_spline_weight()
    spline = dequantize_per_channel(qlayer.spline_weight_q.data, qlayer.spline_weight_scale.data)
    steps = np.broadcast_to(qlayer.spline_weight_scale.numpy()[:, None, None].astype(np.float64), spline.shape)
    assert_within_half_a_step(coefficients, spline, steps)
    twin = KAN(KANConfig(widths=(3, 4))).eval()  # the float layer, given the dequantized coefficients
    twin.layers[0].base_weight.data[...] = dequantize_per_channel(qlayer.base_weight_q.data,
                                                                  qlayer.base_weight_scale.data)
    twin.layers[0].spline_weight.data[...] = spline
    twin.layers[0].spline_scaler.data[...] = 1.0
    x = ember.tensor(RNG.uniform(-1, 1, (6, 3)).astype(np.float32))
    with ember.no_grad():
        np.testing.assert_allclose(qkan(x).numpy(), twin(x).numpy(), rtol=1e-5, atol=1e-6)


def test_quantize_model_refuses_float64_and_models_without_layers():
    with pytest.raises(TypeError, match="model.float"):
        quantize_model(MLP().double())
    with pytest.raises(ValueError, match="no Linear, Conv2d, Embedding or KANLinear"):
        quantize_model(nn.Sequential(nn.ReLU()))


def test_gpt_tied_embedding_and_head_are_quantized_once():
    gpt = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=13, block_size=8)).eval()
    qgpt = quantize_model(gpt)
    head, wte = qgpt.lm_head, qgpt.transformer["wte"]
    assert head.weight_q is wte.weight_q and head.weight_scale is wte.weight_scale
    assert "lm_head.weight_q" not in qgpt.state_dict() and "transformer.wte.weight_q" in qgpt.state_dict()
    ids = RNG.integers(0, 13, (2, 8))
    embedded = wte(ids).numpy()
    np.testing.assert_array_equal(embedded, wte.weight.numpy()[ids])  # rows dequantized alone = rows of the table
    cache = qgpt.new_cache(2, 8)
    np.testing.assert_allclose(qgpt.forward_cached(ids, cache), qgpt(ids).numpy(), rtol=1e-5, atol=1e-6)


def int8_gpt(seed=0):
    gpt = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=29, block_size=24, bias=True)).eval()
    rng = np.random.default_rng(seed)
    for p in gpt.parameters():
        p.data += (rng.standard_normal(p.shape) * 0.3).astype(np.float32)
    return quantize_model(gpt)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_gpt_decodes_as_its_full_forward_computes(seed):
    """The decode loop multiplies by the int8 codes (``kernels.int8``) and embeds only the rows it reads; the full
    forward computes with the dequantized matrices. Rows at different lengths, one token each, then greedy
    generation."""
    qgpt = int8_gpt(seed)
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, 29, n).tolist() for n in (5, 9, 2)]
    cache = qgpt.new_cache(3, 24)
    for row, seq in enumerate(seqs):
        qgpt.forward_cached(np.array([seq[:-1]]), cache, rows=[row])
    logits = qgpt.forward_last([[seq[-1]] for seq in seqs], cache, [0, 1, 2])
    for row, seq in enumerate(seqs):
        want = qgpt(np.array([seq])).numpy()[0, -1]
        np.testing.assert_allclose(logits[row], want, rtol=0, atol=1e-5 * max(1.0, float(np.abs(want).max())))
    prompt = seqs[1]
    tokens = list(qgpt.generate(prompt, 12, temperature=0))
    full = qgpt(np.array([prompt + tokens[:-1]])).numpy()[0]
    assert tokens == full[len(prompt) - 1:].argmax(-1).tolist()


@pytest.mark.parametrize("batch,tokens", [(2, 20), (5, 19), (6, 20)])
def test_int8_gpt_prefills_as_its_full_forward_computes(batch, tokens, monkeypatch):
    """A prompt's prefill runs batch x tokens rows through each layer: up to ``kernels.int8.MOST_ROWS`` (40 and 95
    here) on the int8 codes without building a dequantized matrix, above it (120) through the dequantized weight;
    either way the cache holds what the full forward computes."""
    from ember.compress import quant
    from ember.kernels import int8 as int8_kernels

    qgpt = int8_gpt(batch)
    ids = np.random.default_rng(tokens).integers(0, 29, (batch, tokens))
    built = []
    for cls in (quant.QuantizedLinear, quant.QuantizedEmbedding):
        monkeypatch.setattr(cls, "weight", property(lambda self: built.append(self) or quant.Tensor(
            quant._dequantized(self, "weight"))))
    cache = qgpt.new_cache(batch, 24)
    logits = qgpt.forward_cached(ids, cache)
    assert (built == []) == (batch * tokens <= int8_kernels.MOST_ROWS)
    monkeypatch.undo()
    want = qgpt(ids).numpy()
    np.testing.assert_allclose(logits, want, rtol=0, atol=1e-5 * max(1.0, float(np.abs(want).max())))


def test_int8_gpt_decode_steps_never_build_the_dequantized_matrices(monkeypatch):
    """A quantized layer's ``weight`` dequantizes the whole matrix at each access: the decode loop must not ask
    for it (the code model's int8 decoding ran 6x slower than its float decoding while it did)."""
    from ember.compress import quant

    qgpt = int8_gpt()
    cache = qgpt.new_cache(2, 24)
    qgpt.forward_cached(np.array([[1, 2, 3], [4, 5, 6]]), cache)
    built = []
    for cls in (quant.QuantizedLinear, quant.QuantizedEmbedding):
        monkeypatch.setattr(cls, "weight", property(lambda self: built.append(self) or quant.Tensor(
            quant._dequantized(self, "weight"))))
    for token in range(4):
        qgpt.forward_last([[token], [token + 1]], cache, [0, 1])
    assert built == []


# ----------------------------------------------------------------------------- quantization-aware training


def test_qat_layers_train_through_fake_quantization_and_hand_over_their_input_range():
    model = prepare_qat(MLP(sizes=(12, 8, 3)))
    optimizer = ember.optim.SGD(model.parameters(), lr=0.1)
    x = ember.tensor(RNG.standard_normal((16, 12)).astype(np.float32))
    y = ember.tensor(RNG.integers(0, 3, 16))
    first = model.net[1]
    lo, hi = float(x.numpy().min()), float(x.numpy().max())
    for _ in range(3):
        optimizer.zero_grad()
        ember.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        assert first.input_range() == pytest.approx((lo, hi))  # the same batch: the moving average stays
    assert first.weight.grad is not None and np.abs(first.weight.grad.numpy()).sum() > 0
    qmodel = quantize_model(model)
    assert float(qmodel.net[1].input_scale.data) == activation_qparams(*first.input_range())[0]


# ----------------------------------------------------------------------------- checkpoints


def test_quantized_checkpoint_loads_back_bit_identical_and_is_3_9x_smaller(tmp_path):
    model = MLP().eval()
    x = ember.tensor(RNG.standard_normal((64, 784)).astype(np.float32))
    qmodel = quantize_model(model, calibration_batches=[x[:32], x[32:]])
    float_file = save_checkpoint(tmp_path / "float.safetensors", model)
    int8_file = save_compressed(tmp_path / "int8.safetensors", qmodel, extra={"note": "kept"})
    assert float_file.stat().st_size / int8_file.stat().st_size >= 3.9
    loaded, meta = load_model(int8_file)
    with ember.no_grad():
        np.testing.assert_array_equal(loaded(x).numpy(), qmodel(x).numpy())
    layers = meta["extra"]["compression"]["layers"]
    assert {name for name, e in layers.items() if e["int8"] and e["input_int8"]} == {"net.1", "net.3", "net.5"}
    assert meta["extra"]["note"] == "kept" and isinstance(loaded.net[3], QuantizedLinear)


def test_quantized_gpt_checkpoint_round_trip(tmp_path):
    gpt = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=13, block_size=8)).eval()
    qgpt = quantize_model(gpt)
    loaded, _ = load_model(save_compressed(tmp_path / "gpt.safetensors", qgpt))
    ids = RNG.integers(0, 13, (3, 8))
    np.testing.assert_array_equal(loaded(ids).numpy(), qgpt(ids).numpy())
    assert loaded.lm_head.weight_q is loaded.transformer["wte"].weight_q


def test_a_damaged_compression_record_is_a_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path / "bad.safetensors", MLP(), extra={"compression": {"version": 1, "layers": {
        "net.1": {"int8": True}}}})
    with pytest.raises(CheckpointError, match="cannot rebuild the model: a damaged compression record"):
        load_model(path)
    path = save_checkpoint(tmp_path / "future.safetensors", MLP(), extra={"compression": {"version": 9}})
    with pytest.raises(CheckpointError, match="unsupported compression record"):
        load_model(path)


def test_quantization_on_another_device_equals_the_cpu():
    """``cpu:other`` refuses host arrays as a GPU does: quantizing, calibrating and running stay on the device."""
    import ember.testing.device_double  # noqa: F401 - registers cpu:other

    model = LeNet5().eval()
    x = RNG.standard_normal((3, 1, 28, 28)).astype(np.float32)
    expected = quantize_model(model, [ember.tensor(x)])(ember.tensor(x)).numpy()
    on_device = LeNet5().eval()
    on_device.load_state_dict(model.state_dict())
    on_device.to("cpu:other")
    xd = ember.tensor(x).to("cpu:other")
    qmodel = quantize_model(on_device, [xd])
    out = qmodel(xd)
    assert str(out.device) == "cpu:other" and str(qmodel.conv1.weight_q.device) == "cpu:other"
    np.testing.assert_array_equal(out.numpy(), expected)
