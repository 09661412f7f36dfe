"""Logit-level distillation of causal language models (online, or offline from a top-k cache)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from distill.data import Example, data_sha256, teacher_cache_key
from distill.logit_config import LogitConfig
from distill.losses import (
    cross_entropy,
    forward_kl,
    generalized_jsd,
    kd_loss,
    reverse_kl,
    topk_forward_kl,
)
from distill.models import (
    frozen_causal_lm,
    load_tokenizer,
    same_tokenizer,
    shared_vocabulary,
    student_config,
    tokenizer_dir,
)
from distill.trainer import JobContext

IGNORE = -100


def example_text(example: Example) -> str:
    """The text a causal LM is distilled on: the prompt and, when present, its answer."""
    answer = example.response or example.reference
    return f"{example.prompt}\n{answer}" if answer else example.prompt


def _width(model: PreTrainedModel) -> int:
    return int(model.get_output_embeddings().weight.shape[0])


class LogitTrainer:
    """Distil a causal LM into another that shares its tokenizer."""

    def __init__(self, ctx: JobContext, config: LogitConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.teacher: PreTrainedModel | None = None

    def _load_teacher(self) -> PreTrainedModel:
        if self.teacher is None:
            self.teacher = frozen_causal_lm(self.ctx.teacher, self.ctx.device)
        return self.teacher

    def prepare(self) -> None:
        ctx, cfg = self.ctx, self.config
        torch.manual_seed(cfg.seed)
        self.tokenizer = load_tokenizer(tokenizer_dir(ctx.student, ctx.teacher))
        teacher_tok = load_tokenizer(ctx.teacher)
        same_tokenizer(teacher_tok, self.tokenizer, "logit")  # before loading any weights
        if ctx.student.is_file():
            self.student = AutoModelForCausalLM.from_config(student_config(ctx.student))
        else:
            self.student = AutoModelForCausalLM.from_pretrained(str(ctx.student))
        self.student.to(ctx.device)
        teacher = self._load_teacher()
        self.vocab = shared_vocabulary(
            teacher_tok, self.tokenizer, _width(teacher), _width(self.student)
        )
        self.ids = [self._encode(example_text(e)) for e in ctx.train]
        self.cache: tuple[list[Tensor], list[Tensor]] | None = None
        if cfg.offline:
            self.cache = self._topk_cache()
            self.teacher = None  # trained from the cache alone

    def _encode(self, text: str) -> Tensor:
        ids = self.tokenizer(text, truncation=True, max_length=self.config.max_length)["input_ids"]
        return torch.tensor(ids, dtype=torch.long)

    def _pad(self, rows: list[Tensor]) -> tuple[Tensor, Tensor]:
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), int(self.tokenizer.pad_token_id or 0))
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids.to(self.ctx.device), mask.to(self.ctx.device)

    def _logits(self, model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
        """Next-token logits for positions 0..L-2, truncated to the shared vocabulary."""
        return model(input_ids=ids, attention_mask=mask).logits[:, :-1, : self.vocab]

    @staticmethod
    def _labels(ids: Tensor, mask: Tensor) -> Tensor:
        return ids[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE)

    @torch.inference_mode()
    def _topk_cache(self) -> tuple[list[Tensor], list[Tensor]]:
        """The teacher's top-k log-probabilities per position, computed once and kept on disk."""
        outputs = teacher_cache_key(
            self.ctx.spec.teacher, max_length=self.config.max_length, top_k=self.config.top_k
        )
        key = f"{data_sha256(self.ctx.train)[:16]}-{outputs}"
        path: Path = self.ctx.run_dir / "cache" / f"teacher-topk-{key}.pt"
        if path.exists():
            stored = torch.load(path, weights_only=True)
            return stored["indices"], stored["logprobs"]
        teacher = self._load_teacher()
        indices, logprobs = [], []
        for row in self.ids:
            ids, mask = self._pad([row])
            logp = torch.log_softmax(self._logits(teacher, ids, mask).float(), dim=-1)[0]
            top = logp.topk(self.config.top_k, dim=-1)
            indices.append(top.indices.to(torch.int32).cpu())
            logprobs.append(top.values.to(torch.float16).cpu())
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"indices": indices, "logprobs": logprobs}, path)
        return indices, logprobs

    def trainable(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def example_lengths(self) -> list[int]:
        return [len(row) for row in self.ids]

    def loss(self, indices: list[int]) -> tuple[Tensor, dict[str, float]]:
        cfg = self.config
        ids, mask = self._pad([self.ids[i] for i in indices])
        labels = self._labels(ids, mask)
        valid = labels != IGNORE
        s_logits = self._logits(self.student, ids, mask)
        ce = cross_entropy(s_logits, labels, IGNORE)
        if self.cache is not None:
            width = s_logits.shape[1]
            top_i = torch.zeros((len(indices), width, cfg.top_k), dtype=torch.long)
            top_lp = torch.zeros((len(indices), width, cfg.top_k))
            for row, i in enumerate(indices):
                n = len(self.cache[0][i])
                top_i[row, :n] = self.cache[0][i].long()
                top_lp[row, :n] = self.cache[1][i].float()
            dev = self.ctx.device
            soft = topk_forward_kl(s_logits, top_i.to(dev), top_lp.to(dev), cfg.temperature, valid)
            loss = cfg.alpha * soft + (1 - cfg.alpha) * ce
        else:
            with torch.no_grad():
                t_logits = self._logits(self._load_teacher(), ids, mask)
            if cfg.loss == "forward_kl":
                loss = kd_loss(s_logits, t_logits, labels, cfg.alpha, cfg.temperature, IGNORE)
            elif cfg.loss == "reverse_kl":
                loss = reverse_kl(s_logits, t_logits, cfg.temperature, valid)
            else:
                loss = generalized_jsd(s_logits, t_logits, cfg.beta, cfg.temperature, valid)
        return loss, {"ce": float(ce.detach())}

    @torch.inference_mode()
    def evaluate(self) -> dict[str, float]:
        examples = self.ctx.eval or self.ctx.train[:64]
        teacher = self._load_teacher()
        kl = agree = s_ce = t_ce = tokens = 0.0
        for example in examples:
            ids, mask = self._pad([self._encode(example_text(example))])
            if ids.shape[1] < 2:
                continue
            labels = self._labels(ids, mask)
            s_logits = self._logits(self.student, ids, mask)
            t_logits = self._logits(teacher, ids, mask)
            n = float(labels.numel())
            kl += float(forward_kl(s_logits, t_logits)) * n
            agree += float((s_logits.argmax(-1) == t_logits.argmax(-1)).float().sum())
            s_ce += float(cross_entropy(s_logits, labels)) * n
            t_ce += float(cross_entropy(t_logits, labels)) * n
            tokens += n
        tokens = max(tokens, 1.0)
        return {
            "eval_examples": float(len(examples)),
            "eval_on_held_out": float(bool(self.ctx.eval)),
            "eval_kl_teacher_student": kl / tokens,
            "eval_top1_agreement": agree / tokens,
            "eval_student_ce": s_ce / tokens,
            "eval_teacher_ce": t_ce / tokens,
        }

    def save_student(self, directory: Path) -> None:
        self.student.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(str(directory))
