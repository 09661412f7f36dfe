"""Each loss against a naive loop over positions and vocabulary entries, on seeded tensors."""

from __future__ import annotations

import math

import pytest
import torch

from distill import losses

B, L, V, H = 2, 3, 5, 4


def _softmax(row: list[float], t: float = 1.0) -> list[float]:
    peak = max(x / t for x in row)
    exps = [math.exp(x / t - peak) for x in row]
    return [e / sum(exps) for e in exps]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True) if pi > 0)


def _positions(mask: torch.Tensor) -> list[tuple[int, int]]:
    return [(b, i) for b in range(B) for i in range(L) if mask[b, i]]


@pytest.fixture
def tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    student = torch.randn(B, L, V, generator=gen, dtype=torch.float64)
    teacher = torch.randn(B, L, V, generator=gen, dtype=torch.float64) * 2
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)
    return student, teacher, mask


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_forward_kl_is_teacher_to_student_kl_times_t_squared(tensors, t) -> None:  # type: ignore[no-untyped-def]
    s, te, mask = tensors
    values = [
        _kl(_softmax(te[b, i].tolist(), t), _softmax(s[b, i].tolist(), t))
        for b, i in _positions(mask)
    ]
    expected = sum(values) / len(values) * t * t
    assert float(losses.forward_kl(s, te, t, mask)) == pytest.approx(expected, rel=1e-5)


def test_reverse_kl_is_student_to_teacher_kl(tensors) -> None:  # type: ignore[no-untyped-def]
    s, te, mask = tensors
    values = [
        _kl(_softmax(s[b, i].tolist(), 2.0), _softmax(te[b, i].tolist(), 2.0))
        for b, i in _positions(mask)
    ]
    assert float(losses.reverse_kl(s, te, 2.0, mask)) == pytest.approx(
        sum(values) / len(values) * 4, rel=1e-5
    )


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_generalized_jsd_against_mixture_loop(tensors, beta) -> None:  # type: ignore[no-untyped-def]
    s, te, mask = tensors
    values = []
    for b, i in _positions(mask):
        p, q = _softmax(te[b, i].tolist()), _softmax(s[b, i].tolist())
        if beta == 0.0:
            values.append(_kl(p, q))
        elif beta == 1.0:
            values.append(_kl(q, p))
        else:
            m = [beta * pi + (1 - beta) * qi for pi, qi in zip(p, q, strict=True)]
            values.append(beta * _kl(p, m) + (1 - beta) * _kl(q, m))
    expected = sum(values) / len(values)
    assert float(losses.generalized_jsd(s, te, beta, 1.0, mask)) == pytest.approx(
        expected, rel=1e-5
    )


def test_kd_loss_mixes_soft_kl_and_hard_cross_entropy(tensors) -> None:  # type: ignore[no-untyped-def]
    s, te, mask = tensors
    labels = torch.tensor([[1, 4, -100], [0, -100, 2]])
    soft, hard = [], []
    for b, i in _positions(mask):
        soft.append(_kl(_softmax(te[b, i].tolist(), 3.0), _softmax(s[b, i].tolist(), 3.0)) * 9)
        hard.append(-math.log(_softmax(s[b, i].tolist())[int(labels[b, i])]))
    expected = 0.3 * sum(soft) / len(soft) + 0.7 * sum(hard) / len(hard)
    assert float(losses.kd_loss(s, te, labels, 0.3, 3.0)) == pytest.approx(expected, rel=1e-5)


def test_topk_forward_kl_renormalises_on_the_teachers_support(tensors) -> None:  # type: ignore[no-untyped-def]
    s, te, mask = tensors
    k, t = 3, 2.0
    top = torch.log_softmax(te, -1).topk(k, dim=-1)
    values = []
    for b, i in _positions(mask):
        idx = top.indices[b, i].tolist()
        p = _softmax(top.values[b, i].tolist(), t)
        full = _softmax(s[b, i].tolist(), t)
        values.append(
            sum(pj * (math.log(pj) - math.log(full[j])) for pj, j in zip(p, idx, strict=True))
        )
    expected = sum(values) / len(values) * t * t
    got = losses.topk_forward_kl(s, top.indices, top.values, t, mask)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_topk_with_the_whole_vocabulary_equals_forward_kl(tensors) -> None:  # type: ignore[no-untyped-def]
    s, te, mask = tensors
    top = torch.log_softmax(te, -1).topk(V, dim=-1)
    assert float(losses.topk_forward_kl(s, top.indices, top.values, 2.0, mask)) == pytest.approx(
        float(losses.forward_kl(s, te, 2.0, mask)), rel=1e-6
    )


def test_hidden_mse_and_cosine_against_loops() -> None:
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(B, L, H, generator=gen, dtype=torch.float64)
    b = torch.randn(B, L, H, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1], [1, 1, 1]])
    keep = [(x, i) for x in range(B) for i in range(L) if mask[x, i]]
    mse = [sum((a[x, i, h] - b[x, i, h]) ** 2 for h in range(H)) / H for x, i in keep]
    cos = []
    for x, i in keep:
        dot = sum(a[x, i, h] * b[x, i, h] for h in range(H))
        na = math.sqrt(sum(a[x, i, h] ** 2 for h in range(H)))
        nb = math.sqrt(sum(b[x, i, h] ** 2 for h in range(H)))
        cos.append(1 - dot / (na * nb))
    assert float(losses.hidden_mse(a, b, mask)) == pytest.approx(float(sum(mse) / len(mse)))
    assert float(losses.hidden_cosine(a, b, mask)) == pytest.approx(float(sum(cos) / len(cos)))


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.arange(12, dtype=torch.float64).reshape(1, 3, 4)
    pooled = losses.mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    assert pooled.tolist() == [[2.0, 3.0, 4.0, 5.0]]


def test_losses_are_zero_when_student_equals_teacher(tensors) -> None:  # type: ignore[no-untyped-def]
    _, te, mask = tensors
    for value in (
        losses.forward_kl(te, te, 2.0, mask),
        losses.reverse_kl(te, te, 2.0, mask),
        losses.generalized_jsd(te, te, 0.5, 1.0, mask),
    ):
        assert float(value) == pytest.approx(0.0, abs=1e-6)
