"""Output-level distillation: the teacher answers the job's prompts, the student learns the answers.

Earlier generations (a data record's ``response``) are used as they are; the others are generated
by a local teacher or an API teacher (:mod:`distill.api_teacher`) and written to
``run/generations-<split>-<key>.jsonl``, which a resumed job reuses; the key is the teacher's
identity and the generation settings, so another teacher or template never reuses them.
Teacher and student may use different tokenizers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from distill.data import Example, teacher_cache_key
from distill.exceptions import DistillError
from distill.losses import cross_entropy
from distill.models import frozen_causal_lm, load_tokenizer, student_config, tokenizer_dir
from distill.output_config import OutputConfig
from distill.trainer import JobContext

IGNORE = -100


class OutputTrainer:
    """Fine-tune the student on teacher responses (sequence-level knowledge distillation)."""

    def __init__(self, ctx: JobContext, config: OutputConfig) -> None:
        self.ctx = ctx
        self.config = config
        self._teacher: PreTrainedModel | None = None

    # --- what the reasoning-trace method changes -------------------------------------------
    def keep(self, example: Example, response: str) -> bool:
        """Whether a response is used for training (every response, for this method)."""
        return True

    def report_counts(self, split: str, kept: int, total: int) -> None:
        self.ctx.report[f"{split}_responses"] = total

    # --- generation ---------------------------------------------------------------------------
    def _teacher_model(self) -> PreTrainedModel:
        if self._teacher is None:
            self._teacher = frozen_causal_lm(self.ctx.teacher, self.ctx.device)
            self.teacher_tokenizer = load_tokenizer(self.ctx.teacher)
            self.teacher_tokenizer.padding_side = "left"
        return self._teacher

    @torch.inference_mode()
    def _generate(self, prompts: list[str]) -> list[str]:
        if self.ctx.spec.teacher.startswith("api:"):
            from distill import api_teacher

            rendered = [self.config.render(p) for p in prompts]
            return api_teacher.generate(self.ctx.spec.teacher, rendered, self.config.max_new_tokens)
        teacher = self._teacher_model()
        tok = self.teacher_tokenizer
        out: list[str] = []
        step = self.config.generation_batch_size
        for start in range(0, len(prompts), step):
            chunk = [self.config.render(p) for p in prompts[start : start + step]]
            batch = tok(
                chunk,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.config.max_length,
            ).to(self.ctx.device)
            generated = teacher.generate(  # type: ignore[operator]
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                max_new_tokens=self.config.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id or tok.sep_token_id,
            )
            new = generated[:, batch["input_ids"].shape[1] :]
            out += [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]
        return out

    def _generations(self, split: str) -> Path:
        """The file of this teacher's generations under these settings, one prompt a line."""
        cfg = self.config
        key = teacher_cache_key(
            self.ctx.spec.teacher,
            prompt_template=cfg.prompt_template,
            max_new_tokens=cfg.max_new_tokens,
            max_length=cfg.max_length,
        )
        return self.ctx.run_dir / f"generations-{split}-{key}.jsonl"

    def _responses(self, examples: list[Example], split: str) -> list[tuple[Example, str]]:
        path = self._generations(split)
        cached: dict[str, str] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                cached[record["prompt"]] = record["response"]
        missing = [e.prompt for e in examples if e.response is None and e.prompt not in cached]
        if missing:
            generated = self._generate(missing)
            with path.open("a", encoding="utf-8") as handle:
                for prompt, response in zip(missing, generated, strict=True):
                    cached[prompt] = response
                    handle.write(json.dumps({"prompt": prompt, "response": response}) + "\n")
        pairs = [(e, e.response if e.response is not None else cached[e.prompt]) for e in examples]
        kept = [(e, r) for e, r in pairs if r.strip() and self.keep(e, r)]
        self.report_counts(split, len(kept), len(pairs))
        return kept

    # --- training -------------------------------------------------------------------------------
    def prepare(self) -> None:
        ctx = self.ctx
        torch.manual_seed(self.config.seed)
        if ctx.spec.teacher.startswith("api:") and not ctx.student.is_dir():
            raise DistillError(
                f"teacher {ctx.spec.teacher} has no tokenizer to lend a student built from a "
                "config file: give a student model directory"
            )
        self.tokenizer = load_tokenizer(tokenizer_dir(ctx.student, ctx.teacher))
        self.pairs = self._responses(ctx.train, "train")
        if not self.pairs:
            raise DistillError(
                "no teacher response is left to train on (see the kept/rejected counts): "
                f"{json.dumps(ctx.report)}"
            )
        self.eval_pairs = self._responses(ctx.eval, "eval") if ctx.eval else []
        self._teacher = None  # not needed past generation
        if ctx.student.is_file():
            self.student = AutoModelForCausalLM.from_config(student_config(ctx.student))
        else:
            self.student = AutoModelForCausalLM.from_pretrained(str(ctx.student))
        self.student.to(ctx.device)
        self.rows = [self._encode(e.prompt, r) for e, r in self.pairs]

    def _encode(self, prompt: str, response: str) -> tuple[Tensor, int]:
        """Token ids of prompt + response and how many belong to the prompt (not learned)."""
        rendered = self.config.render(prompt)
        head = self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        eos = self.tokenizer.eos_token or self.tokenizer.sep_token or ""
        tail = self.tokenizer(response + eos, add_special_tokens=False)["input_ids"]
        ids = (head + tail)[: self.config.max_length]
        return torch.tensor(ids, dtype=torch.long), min(len(head), len(ids))

    def _batch(self, rows: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor, Tensor]:
        length = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), length), int(self.tokenizer.pad_token_id or 0))
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE)
        for i, (row, head) in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
            labels[i, head : len(row)] = row[head:]
        dev = self.ctx.device
        return ids.to(dev), mask.to(dev), labels[:, 1:].to(dev)

    def trainable(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def example_lengths(self) -> list[int]:
        return [len(ids) for ids, _ in self.rows]

    def loss(self, indices: list[int]) -> tuple[Tensor, dict[str, float]]:
        ids, mask, labels = self._batch([self.rows[i] for i in indices])
        logits = self.student(input_ids=ids, attention_mask=mask).logits[:, :-1]
        return cross_entropy(logits, labels, IGNORE), {}

    @torch.inference_mode()
    def evaluate(self) -> dict[str, float]:
        """Teacher-forced on held-out teacher responses: the student's CE and how often its
        most likely next token is the teacher's."""
        pairs = self.eval_pairs or self.pairs[:64]
        ce = agree = tokens = 0.0
        for example, response in pairs:
            ids, mask, labels = self._batch([self._encode(example.prompt, response)])
            logits = self.student(input_ids=ids, attention_mask=mask).logits[:, :-1]
            keep = labels != IGNORE
            n = float(keep.sum())
            if n == 0:
                continue
            ce += float(cross_entropy(logits, labels, IGNORE)) * n
            agree += float((logits.argmax(-1)[keep] == labels[keep]).float().sum())
            tokens += n
        tokens = max(tokens, 1.0)
        return {
            "eval_examples": float(len(pairs)),
            "eval_on_held_out": float(bool(self.eval_pairs)),
            "eval_student_ce_on_teacher_responses": ce / tokens,
            "eval_teacher_token_agreement": agree / tokens,
        }

    def save_student(self, directory: Path) -> None:
        self.student.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(str(directory))
