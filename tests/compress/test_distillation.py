"""Distillation: Hinton's loss against PyTorch and by hand (value and gradients), and a student that learns a
teacher's function from its soft targets alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember.compress import distill, distillation_loss, mlp_student
from ember.data import DataLoader, TensorDataset
from ember.models import MLP, LeNet5

RNG = np.random.default_rng(0)


def torch_reference(torch, s: np.ndarray, t: np.ndarray, y: np.ndarray, temperature: float, alpha: float):
    """(loss, d loss / d student logits) from torch.nn.functional in float64."""
    F = torch.nn.functional
    st = torch.from_numpy(s).requires_grad_()
    soft = F.kl_div(F.log_softmax(st / temperature, dim=1), F.softmax(torch.from_numpy(t) / temperature, dim=1),
                    reduction="batchmean")
    loss = alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(st, torch.from_numpy(y))
    loss.backward()
    return float(loss.detach()), st.grad.numpy()


@pytest.mark.parametrize("temperature, alpha", [(4.0, 0.9), (1.0, 0.5), (2.5, 1.0), (3.0, 0.0)])
def test_distillation_loss_and_gradient_equal_torch(torch, temperature, alpha):
    s = RNG.standard_normal((6, 5)) * 3
    t = RNG.standard_normal((6, 5)) * 3
    y = RNG.integers(0, 5, 6)
    expected, expected_grad = torch_reference(torch, s, t, y, temperature, alpha)
    student = ember.tensor(s, requires_grad=True)
    teacher = ember.tensor(t, requires_grad=True)
    loss = distillation_loss(student, teacher, ember.tensor(y), temperature, alpha)
    loss.backward()
    assert float(loss) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(student.grad.numpy(), expected_grad, rtol=1e-9, atol=1e-12)
    assert teacher.grad is None  # the teacher's logits are constants


def test_distillation_loss_by_hand():
    """One sample, two classes, T = 2: teacher logits (0, 2ln3) soften to (1/4, 3/4); the student's (0, 0) to
    (1/2, 1/2). KL = 1/4·ln(1/2) + 3/4·ln(3/2); with alpha = 1 the loss is T²·KL."""
    student = ember.tensor(np.zeros((1, 2)), requires_grad=True)
    teacher = ember.tensor(np.array([[0.0, 2 * math.log(3)]]))
    loss = distillation_loss(student, teacher, ember.tensor(np.array([0])), temperature=2.0, alpha=1.0)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert float(loss) == pytest.approx(4 * kl, rel=1e-12)
    loss.backward()
    # d/ds of T²·KL = T·(p_student - p_teacher) = 2·((1/2, 1/2) - (1/4, 3/4))
    np.testing.assert_allclose(student.grad.numpy(), [[0.5, -0.5]], rtol=1e-12)


def test_distillation_loss_names_bad_arguments():
    s = ember.zeros(2, 3)
    with pytest.raises(ValueError, match="temperature must be positive"):
        distillation_loss(s, s, np.zeros(2, np.int64), temperature=0.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        distillation_loss(s, s, np.zeros(2, np.int64), alpha=1.5)
    with pytest.raises(ValueError, match=r"must both be \(N, C\), got \(2, 3\) and \(2, 4\)"):
        distillation_loss(s, ember.zeros(2, 4), np.zeros(2, np.int64))


def test_a_student_learns_the_teachers_function_from_soft_targets_alone():
    """alpha = 1: the labels are random noise, so all the student can learn comes from the teacher."""
    teacher = MLP(sizes=(10, 32, 4)).eval()
    x = RNG.standard_normal((512, 10)).astype(np.float32)
    noise_labels = RNG.integers(0, 4, 512).astype(np.int64)
    loader = DataLoader(TensorDataset(x, noise_labels), batch_size=32, shuffle=True, seed=0)
    student = mlp_student(teacher, (16,))
    assert student.config.sizes == (10, 16, 4)

    def agreement() -> float:
        with ember.no_grad():
            xt = ember.tensor(x)
            return float((student.eval()(xt).numpy().argmax(1) == teacher(xt).numpy().argmax(1)).mean())

    before = agreement()
    history = distill(student, teacher, loader, ember.optim.Adam(student.parameters(), lr=1e-2), epochs=4,
                      temperature=2.0, alpha=1.0)
    assert len(history) == 4 and history[-1].loss < history[0].loss
    assert agreement() > max(0.85, before + 0.3)


def test_mlp_student_of_lenet_takes_its_images():
    student = mlp_student(LeNet5(), (8,))
    assert student.config.sizes == (784, 8, 10)
    assert student(ember.zeros(2, 1, 28, 28)).shape == (2, 10)
