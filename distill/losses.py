"""Distillation losses as pure functions of tensors.

Logits are ``[..., V]``; ``mask`` (same leading shape, 1 = counts) selects the positions that
enter the mean. Every function here is pinned by a test against a naive loop reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def _log_probs(student: Tensor, teacher: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Student and teacher log-probabilities at ``temperature``, in float32 at least."""
    return (
        F.log_softmax(student.float() / temperature, dim=-1),
        F.log_softmax(teacher.float() / temperature, dim=-1),
    )


def _kl(p_logp: Tensor, q_logp: Tensor) -> Tensor:
    """KL(p || q) per position from log-probabilities over the last dimension."""
    return (p_logp.exp() * (p_logp - q_logp)).sum(-1)


def forward_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """KL(teacher || student) on temperature-softened distributions, scaled by T² (Hinton)."""
    s_logp, t_logp = _log_probs(student_logits, teacher_logits, temperature)
    return _masked_mean(_kl(t_logp, s_logp), mask) * temperature**2


def reverse_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """KL(student || teacher) (mode-seeking, as in MiniLLM / GKD), scaled by T²."""
    s_logp, t_logp = _log_probs(student_logits, teacher_logits, temperature)
    return _masked_mean(_kl(s_logp, t_logp), mask) * temperature**2


def generalized_jsd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    beta: float = 0.5,
    temperature: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Generalised Jensen-Shannon divergence (GKD), scaled by T².

    With M = beta·P_T + (1-beta)·P_S: beta·KL(P_T || M) + (1-beta)·KL(P_S || M); beta 0 is
    forward KL and beta 1 reverse KL (the limits GKD uses).
    """
    s_logp, t_logp = _log_probs(student_logits, teacher_logits, temperature)
    if beta == 0.0:
        per_position = _kl(t_logp, s_logp)
    elif beta == 1.0:
        per_position = _kl(s_logp, t_logp)
    else:
        mixture = torch.logsumexp(
            torch.stack([t_logp + math.log(beta), s_logp + math.log(1 - beta)]), dim=0
        )
        per_position = beta * _kl(t_logp, mixture) + (1 - beta) * _kl(s_logp, mixture)
    return _masked_mean(per_position, mask) * temperature**2


def cross_entropy(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean cross-entropy of ``logits`` [..., V] on ``labels``, skipping ``ignore_index``."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=ignore_index
    )


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    alpha: float,
    temperature: float,
    ignore_index: int = -100,
) -> Tensor:
    """Hinton's mix: ``alpha``·T²·KL(teacher || student) + (1-alpha)·CE(student, labels)."""
    mask = labels != ignore_index
    soft = forward_kl(student_logits, teacher_logits, temperature, mask)
    if alpha >= 1.0:
        return soft
    return alpha * soft + (1 - alpha) * cross_entropy(student_logits, labels, ignore_index)


def topk_forward_kl(
    student_logits: Tensor,
    teacher_indices: Tensor,
    teacher_logprobs: Tensor,
    temperature: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Forward KL on the teacher's cached top-k support (the offline mode).

    The teacher's top-k log-probabilities (taken at temperature 1) are renormalised over the k
    tokens after softening by ``temperature``; the student's log-probabilities over the full
    vocabulary are gathered at the same indices. Scaled by T².
    """
    s_logp_full, t_logp = _log_probs(student_logits, teacher_logprobs, temperature)
    s_logp = s_logp_full.gather(-1, teacher_indices.long())
    return _masked_mean(_kl(t_logp, s_logp), mask) * temperature**2


def hidden_mse(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error per position, averaged over the hidden width then the kept positions."""
    per_position = ((student.float() - teacher.float()) ** 2).mean(-1)
    return _masked_mean(per_position, mask)


def hidden_cosine(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """1 - cosine similarity per position (DistilBERT's cosine embedding loss), masked mean."""
    per_position = 1 - F.cosine_similarity(student.float(), teacher.float(), dim=-1, eps=1e-8)
    return _masked_mean(per_position, mask)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Sentence embedding: the mean of the token states the attention mask keeps."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
