"""Hidden-state distillation: mapped layers (MSE or cosine, learned projection when widths differ)
and sentence-embedding regression (student mean-pooled embeddings on the teacher's)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel

from distill import teacher_states
from distill.exceptions import DistillError
from distill.hidden_state_config import HiddenStateConfig
from distill.loop import total_steps
from distill.losses import hidden_cosine, hidden_mse, mean_pool
from distill.models import (
    FeedForwardMasks,
    attention_importance,
    feed_forward_importance,
    keep_layers,
    load_tokenizer,
    prune_attention_heads,
    prune_feed_forward,
    prune_schedule,
    same_tokenizer,
    student_config,
    tokenizer_dir,
)
from distill.trainer import JobContext
from distillguard.encoders import PrunedBertModel, layer_sizes, register

_SENTENCE_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
_ENCODE_BATCH = 64
_MIN_CROP_WORDS = 6
_PRUNE_TEXTS = 1024
Importance = Callable[[nn.Module, Iterable[dict[str, Tensor]]], list[Tensor]]


def evenly_spaced(items: list[str], n: int) -> list[str]:
    """At most ``n`` of ``items``, spread evenly from the first to the last, in their order."""
    if len(items) <= n:
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


class HiddenStateTrainer:
    """Trains an encoder (or any model with hidden states) to match a teacher's representations."""

    def __init__(self, ctx: JobContext, config: HiddenStateConfig) -> None:
        self.ctx = ctx
        self.config = config

    def prepare(self) -> None:
        ctx, cfg = self.ctx, self.config
        torch.manual_seed(cfg.seed)
        register()  # a pruned student (or teacher) is a distillguard pruned BERT
        self.tokenizer = load_tokenizer(tokenizer_dir(ctx.student, ctx.teacher))
        teacher_tok = load_tokenizer(ctx.teacher)
        same_tokenizer(teacher_tok, self.tokenizer, "hidden-state")
        self.teacher = AutoModel.from_pretrained(str(ctx.teacher)).to(ctx.device).eval()
        self.teacher.requires_grad_(False)
        config = (
            student_config(ctx.student)
            if ctx.student.is_file()
            else AutoConfig.from_pretrained(str(ctx.student))
        )
        self._base_dropout = {
            name: value
            for name, value in config.to_dict().items()
            if "dropout" in name and isinstance(value, float)
        }
        if cfg.dropout is not None:
            for name in self._base_dropout:
                setattr(config, name, cfg.dropout)
        if ctx.student.is_file():
            self.student = AutoModel.from_config(config)
        else:
            self.student = AutoModel.from_pretrained(str(ctx.student), config=config)
        if cfg.dropout is not None:
            for module in self.student.modules():
                if isinstance(module, nn.Dropout):
                    module.p = cfg.dropout
        if cfg.student_layers is not None:
            keep_layers(self.student, cfg.student_layers)
        self.student.to(ctx.device)
        self.texts = self._training_texts()
        self.masks: FeedForwardMasks | None = None  # a gradual prune's masks and schedule
        self.schedule: list[tuple[int, int]] = []
        if cfg.attention_heads is not None:
            importance = self._importance(attention_importance)
            self.student = prune_attention_heads(self.student, cfg.attention_heads, importance)
        if cfg.ffn_size is not None and cfg.prune_until > 0:
            self.masks = FeedForwardMasks(self.student, cfg.ffn_size)
            total = total_steps(cfg, len(self.texts))[1]
            self.schedule = prune_schedule(
                self.masks.units, cfg.ffn_size, total, cfg.prune_until, cfg.prune_rounds
            )
        elif cfg.ffn_size is not None:
            prune_feed_forward(
                self.student, cfg.ffn_size, self._importance(feed_forward_importance)
            )
        if cfg.freeze_embeddings:
            embeddings = getattr(self.student, "embeddings", None)
            if not isinstance(embeddings, nn.Module):
                embeddings = self.student.get_input_embeddings()
            embeddings.requires_grad_(False)
        t_width, s_width = self.teacher.config.hidden_size, self.student.config.hidden_size
        self.projection: nn.Module = (
            nn.Linear(s_width, t_width).to(ctx.device) if s_width != t_width else nn.Identity()
        )
        self.head = self._pooled_head(s_width, t_width)
        s_depth = self.student.config.num_hidden_layers
        t_depth = self.teacher.config.num_hidden_layers
        for s, t in cfg.layer_map.items():
            if s > s_depth or t > t_depth:
                raise DistillError(
                    f"layer_map {s}: {t}: the student has hidden states 0..{s_depth} and the "
                    f"teacher 0..{t_depth}"
                )
        self._lengths: list[int] | None = None
        self._words: tuple[list[str], Tensor] | None = None  # what word_substitution draws
        if cfg.word_substitution > 0:
            self._words = self._substitution_words()  # a tokenizer without words stops here
        self.targets: Tensor | None = None  # pooled teacher embeddings of the training texts
        self.states: teacher_states.TeacherStates | None = None
        if cfg.layer_map and cfg.cache_teacher:
            self.states = self._cached_teacher_states()
            if cfg.embedding_loss != "none":
                self.targets = self.states.pooled
        elif cfg.embedding_loss != "none" and not cfg.layer_map:
            # with a layer map (uncached) the teacher runs on every batch and pools its own target
            self.targets = self._cached_teacher_embeddings()

    def _importance(self, measure: Importance) -> list[Tensor]:
        """The importance of the student's units (``measure``: feed-forward units or attention
        heads) on training texts, drawn evenly from all of them (the first ones would be the
        first data files' alone)."""
        texts = sorted(evenly_spaced(self.texts, _PRUNE_TEXTS), key=len)
        chunks = range(0, len(texts), _ENCODE_BATCH)
        batches = (self._tokens(texts[i : i + _ENCODE_BATCH]) for i in chunks)
        self.student.eval()
        with torch.no_grad():
            importance = measure(self.student, batches)
        self.student.train()
        return importance

    def _prune_round(self) -> None:
        """Before each step of a gradual prune: mask units down to the size the schedule sets
        for this step (importance measured on the masked student as it is now)."""
        assert self.masks is not None
        done = self.masks.tick()
        due = [size for step, size in self.schedule if step <= done]
        if due and due[-1] < self.masks.kept():
            self.masks.keep(due[-1], self._importance(feed_forward_importance))

    def _training_texts(self) -> list[str]:
        """The prompts of the training records, or with ``train_texts: records`` every text of
        them (each once, none equal to a held-out prompt); then evened out across sources by
        ``source_balance``."""
        if self.config.train_texts == "prompts":
            pairs = [(e.source, e.prompt) for e in self.ctx.train]
        else:
            held = {e.prompt for e in self.ctx.eval}
            first: dict[str, str] = {}  # text -> the source it first came from
            for e in self.ctx.train:
                for text in (e.prompt, *e.context):
                    first.setdefault(text, e.source)
            pairs = [(source, t) for t, source in first.items() if t not in held]
        if self.config.source_balance == 0:
            return [t for _, t in pairs]
        return balance_sources(pairs, self.config.source_balance)

    def _tokens(self, texts: list[str]) -> dict[str, Tensor]:
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        return {k: v.to(self.ctx.device) for k, v in batch.items()}

    @torch.inference_mode()
    def _embed(self, model: nn.Module, texts: list[str], project: bool = False) -> Tensor:
        """Mean-pooled embeddings, computed in batches of similar length (order preserved)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.teacher.config.hidden_size)
        for start in range(0, len(order), _ENCODE_BATCH):
            chunk = order[start : start + _ENCODE_BATCH]
            batch = self._tokens([texts[i] for i in chunk])
            hidden = model(**batch).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"])
            out[chunk] = (self._pooled_map()(pooled) if project else pooled).float().cpu()
        return out

    def _cache_path(self, kind: str, **settings: object) -> Path:
        """Where the teacher's ``kind`` outputs for the training texts are cached in this run,
        keyed by the teacher, the texts, the token limit and ``settings``."""
        from distill.data import teacher_cache_key

        texts = hashlib.sha256(json.dumps(self.texts).encode("utf-8")).hexdigest()
        key = teacher_cache_key(
            self.ctx.spec.teacher, texts=texts, max_length=self.config.max_length, **settings
        )
        return self.ctx.run_dir / "cache" / f"teacher-{kind}-{key}.pt"

    def _cached_teacher_embeddings(self) -> Tensor:
        path = self._cache_path("embeddings")
        if path.exists():
            cached: Tensor = torch.load(path, weights_only=True)
            return cached
        embeddings = self._embed(self.teacher, self.texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(embeddings, path)
        return embeddings

    def _cached_teacher_states(self) -> teacher_states.TeacherStates:
        layers = sorted(set(self.config.layer_map.values()))
        lengths = self.example_lengths()
        return teacher_states.load_or_compute(
            self._cache_path("states", layers=layers),
            lambda: teacher_states.compute(
                self.teacher,
                self.teacher.config.hidden_size,
                self.texts,
                lengths,
                layers,
                self._tokens,
                _ENCODE_BATCH,
            ),
        )

    def _pooled_head(self, s_width: int, t_width: int) -> nn.Linear | None:
        """The linear map on the pooled embedding (``pooled_head: linear``): the student folder's
        own Dense layer where it has one, else the identity (a fresh layer where widths differ)."""
        saved = dense_folder(self.ctx.student) if self.ctx.student.is_dir() else None
        if self.config.pooled_head == "none":
            if saved is not None:
                raise DistillError(
                    f"the student {self.ctx.student} has a Dense layer after pooling "
                    f"({saved.name}): set pooled_head: linear to train it on"
                )
            return None
        if not (self._sentence_base() / "modules.json").is_file():
            raise DistillError(
                f"pooled_head saves a sentence-transformers Dense layer, but "
                f"{self._sentence_base()} has no modules.json to add it to"
            )
        if saved is not None:
            head = load_dense(saved, s_width, t_width)
        else:
            head = nn.Linear(s_width, t_width)
            if s_width == t_width:
                with torch.no_grad():
                    head.weight.copy_(torch.eye(s_width))
                    head.bias.zero_()
        return head.to(self.ctx.device)

    def _sentence_base(self) -> Path:
        """The folder whose sentence-transformers files the student gets."""
        return self.ctx.student if self.ctx.student.is_dir() else self.ctx.teacher

    def _pooled_map(self) -> nn.Module:
        """What maps the student's pooled embedding into the teacher's space."""
        return self.head if self.head is not None else self.projection

    def trainable(self) -> dict[str, nn.Module]:
        modules = {"student": self.student, "projection": self.projection}
        modules |= {"head": self.head} if self.head is not None else {}
        return modules | ({"ffn_masks": self.masks} if self.masks is not None else {})

    def example_lengths(self) -> list[int]:
        if self._lengths is None:
            ids = self.tokenizer(self.texts, truncation=True, max_length=self.config.max_length)
            self._lengths = [len(row) for row in ids["input_ids"]]
        return self._lengths

    def _crop(self, texts: list[str]) -> tuple[list[str], list[bool]]:
        """Replace ``crop_fraction`` of ``texts`` by a random run of at least a third of their
        words (drawn from torch's RNG, which checkpoints keep, so a resumed run crops alike);
        which texts changed."""
        out, changed = [], []
        for text in texts:
            words = text.split()
            cropped = False
            if len(words) >= _MIN_CROP_WORDS and float(torch.rand(())) < self.config.crop_fraction:
                keep = int(torch.randint(math.ceil(len(words) / 3), len(words) + 1, ()))
                start = int(torch.randint(0, len(words) - keep + 1, ()))
                text, cropped = " ".join(words[start : start + keep]), True
            out.append(text)
            changed.append(cropped)
        return out, changed

    def _substitution_words(self) -> tuple[list[str], Tensor]:
        """The words ``word_substitution`` draws from and their weights: the training texts'
        words by frequency, or (``substitution_words: vocabulary``) every whole word of the
        tokenizer alike: a token of letters only that is not special and that the tokenizer
        reads back as itself alone (which leaves out BERT's "##" pieces)."""
        if self.config.substitution_words == "training":
            counts = Counter(w for text in self.texts for w in text.split())
            return list(counts), torch.tensor(list(counts.values()), dtype=torch.float)
        special = set(self.tokenizer.all_special_tokens)
        tokens = [t for t in self.tokenizer.get_vocab() if t not in special]
        words = [self.tokenizer.convert_tokens_to_string([t]).strip() for t in tokens]
        words = sorted({w for w in words if len(w) > 1 and w.isalpha()})
        ids = self.tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
        words = [w for w, i in zip(words, ids, strict=True) if len(i) == 1]
        if not words:
            raise DistillError(
                "substitution_words: vocabulary: the student's tokenizer has no whole words "
                "(single tokens of letters only) to substitute"
            )
        return words, torch.ones(len(words))

    def _substitute(self, texts: list[str]) -> tuple[list[str], list[bool]]:
        """Replace each word with chance ``word_substitution`` by a word drawn by
        ``_substitution_words`` (torch's RNG, as crops); spacing and line breaks are kept. Which
        texts changed."""
        assert self._words is not None, "drawn once, when the trainer is built"
        vocabulary, weights = self._words
        out, changed = [], []
        for text in texts:
            parts = re.split(r"(\S+)", text)  # words at the odd indices
            hits = (torch.rand(len(parts) // 2) < self.config.word_substitution).nonzero()
            if len(hits):
                picks = torch.multinomial(weights, len(hits), replacement=True)
                for hit, pick in zip(hits.flatten().tolist(), picks.tolist(), strict=True):
                    parts[2 * hit + 1] = vocabulary[pick]
                text = "".join(parts)
            out.append(text)
            changed.append(bool(len(hits)))
        return out, changed

    def loss(self, indices: list[int]) -> tuple[Tensor, dict[str, float]]:
        cfg = self.config
        if self.masks is not None:
            self._prune_round()
        texts, changed = self._crop([self.texts[i] for i in indices])
        if cfg.word_substitution > 0:
            texts, substituted = self._substitute(texts)
            changed = [a or b for a, b in zip(changed, substituted, strict=True)]
        batch = self._tokens(texts)
        out = self.student(**batch, output_hidden_states=bool(cfg.layer_map))
        mask = batch["attention_mask"]
        pooled_target, states, ran = self._teacher_targets(indices, texts, changed, batch)
        total = torch.zeros((), device=self.ctx.device)
        metrics: dict[str, float] = {"teacher_texts": float(ran)}
        if self.masks is not None:
            metrics["ffn_units"] = float(self.masks.kept())
        if pooled_target is not None:
            pooled = self._pooled_map()(mean_pool(out.last_hidden_state, mask))
            fn = hidden_cosine if cfg.embedding_loss == "cosine" else hidden_mse
            part = fn(pooled, pooled_target)
            total = total + cfg.embedding_weight * part
            metrics["embedding_loss"] = float(part.detach())
        if cfg.layer_map:
            fn = hidden_cosine if cfg.hidden_loss == "cosine" else hidden_mse
            parts = [
                fn(self.projection(out.hidden_states[s]), states[t], mask)
                for s, t in cfg.layer_map.items()
            ]
            part = torch.stack(parts).mean()
            total = total + cfg.hidden_weight * part
            metrics["hidden_loss"] = float(part.detach())
        return total, metrics

    def _teacher_targets(
        self, indices: list[int], texts: list[str], changed: list[bool], batch: dict[str, Tensor]
    ) -> tuple[Tensor | None, dict[int, Tensor], int]:
        """The pooled embedding target (None without an embedding loss), the mapped teacher
        layers' states, and on how many texts the teacher ran: from the caches for the texts as
        the data holds them, from the teacher for those that crops or substitutions changed (for
        every text where the layer map's states are not cached)."""
        cfg = self.config
        layers = sorted(set(cfg.layer_map.values()))
        mask = batch["attention_mask"]
        if layers and self.states is None:
            with torch.no_grad():
                teacher = self.teacher(**batch, output_hidden_states=True)
            pooled = None
            if cfg.embedding_loss != "none":
                pooled = mean_pool(teacher.last_hidden_state, mask).float()
            return pooled, {t: teacher.hidden_states[t] for t in layers}, len(texts)
        device = self.ctx.device
        pooled = self.targets[indices].to(device) if self.targets is not None else None
        states = {}
        if self.states is not None:
            rows = [None if c else i for i, c in zip(indices, changed, strict=True)]
            states = {t: self.states.batch(rows, mask, t).to(device) for t in layers}
        live = [j for j, c in enumerate(changed) if c]
        if live:
            sub = self._tokens([texts[j] for j in live])
            with torch.no_grad():
                teacher = self.teacher(**sub, output_hidden_states=bool(layers))
            if pooled is not None:
                pooled[live] = mean_pool(teacher.last_hidden_state, sub["attention_mask"]).float()
            for t in layers:
                for k, j in enumerate(live):
                    kept = teacher.hidden_states[t][k, sub["attention_mask"][k].bool()]
                    states[t][j, mask[j].bool()] = kept.to(states[t].dtype)
        return pooled, states, len(live)

    def evaluate(self) -> dict[str, float]:
        examples = self.ctx.eval or self.ctx.train[:256]
        texts = [e.prompt for e in examples]
        teacher = self._embed(self.teacher, texts)
        student = self._embed(self.student, texts, project=True)
        cosine = torch.nn.functional.cosine_similarity(student, teacher, dim=-1)
        return {
            "train_texts": float(len(self.texts)),
            "eval_examples": float(len(texts)),
            "eval_on_held_out": float(bool(self.ctx.eval)),
            "eval_cosine_mean": float(cosine.mean()),
            "eval_cosine_min": float(cosine.min()),
            "eval_embedding_mse": float(((student - teacher) ** 2).mean()),
        }

    def save_student(self, directory: Path) -> None:
        if self.masks is not None:  # a gradual prune: cut the student to the units it kept
            self.masks.cut(self.student)
            self.masks = None
        for name, value in self._base_dropout.items():  # the training override is not kept
            setattr(self.student.config, name, value)
        if isinstance(self.student, PrunedBertModel):  # layers kept or pruned since it loaded
            config = self.student.config
            config.layer_heads, config.layer_ffn_sizes = layer_sizes(self.student)
        self.student.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(str(directory))
        if not isinstance(self.projection, nn.Identity):
            torch.save(self.projection.state_dict(), directory / "projection.pt")
            if self.head is None:  # its embeddings are in its own width: no sentence files
                return
        base = self._sentence_base()
        for name in _SENTENCE_FILES:
            if (base / name).is_file():
                shutil.copy2(base / name, directory / name)
        if (directory / "modules.json").is_file():
            write_modules(directory, self.head)
        if (base / "1_Pooling").is_dir():
            shutil.copytree(base / "1_Pooling", directory / "1_Pooling", dirs_exist_ok=True)
        settings = directory / "sentence_bert_config.json"
        if settings.is_file():  # the student encodes no more tokens than it was trained on
            values = json.loads(settings.read_text(encoding="utf-8"))
            trained = self.config.max_length
            values["max_seq_length"] = min(int(values.get("max_seq_length") or trained), trained)
            settings.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")


def dense_folder(model: Path) -> Path | None:
    """The folder of the Dense layer in a sentence-transformers model's modules, if it has one."""
    modules = model / "modules.json"
    if not modules.is_file():
        return None
    for module in json.loads(modules.read_text(encoding="utf-8")):
        if _is_dense(module):
            return model / str(module["path"])
    return None


def _is_dense(module: dict[str, object]) -> bool:
    """Whether a modules.json entry is a Dense layer (under any of its import paths)."""
    return str(module.get("type", "")).rsplit(".", 1)[-1] == "Dense"


def load_dense(folder: Path, s_width: int, t_width: int) -> nn.Linear:
    """A saved sentence-transformers Dense layer as the linear map it is, refused unless it is one
    (identity activation) from the student's width to the teacher's."""
    from safetensors.torch import load_file

    settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    activation = str(settings.get("activation_function", "torch.nn.modules.activation.Tanh"))
    if activation.rsplit(".", 1)[-1] != "Identity" or settings.get("use_residual"):
        raise DistillError(
            f"{folder} is not a linear Dense layer (activation {activation}): pooled_head: "
            "linear trains only a plain linear map"
        )
    shape = (int(settings["in_features"]), int(settings["out_features"]))
    if shape != (s_width, t_width):
        raise DistillError(
            f"{folder} maps {shape[0]} to {shape[1]} dimensions; the student's pooled "
            f"embedding has {s_width} and the teacher's {t_width}"
        )
    if not (folder / "model.safetensors").is_file():
        raise DistillError(f"{folder} has no model.safetensors: its weights cannot be trained on")
    head = nn.Linear(s_width, t_width, bias=bool(settings.get("bias", True)))
    weights = load_file(str(folder / "model.safetensors"))
    head.load_state_dict({k.removeprefix("linear."): v for k, v in weights.items()})
    return head


def write_modules(directory: Path, head: nn.Linear | None) -> None:
    """Rewrite the sentence-transformers module list in ``directory``: any Dense layer of the base
    dropped, ``head`` (when given) saved as a Dense layer after pooling, before a Normalize."""
    from sentence_transformers.sentence_transformer.modules import Dense

    modules = [
        m
        for m in json.loads((directory / "modules.json").read_text(encoding="utf-8"))
        if not _is_dense(m)
    ]
    if head is not None:
        at = next(
            (i for i, m in enumerate(modules) if str(m["type"]).endswith(".Normalize")),
            len(modules),
        )
        dense = Dense(
            head.in_features,
            head.out_features,
            bias=head.bias is not None,
            activation_function=nn.Identity(),
        )
        dense.linear.load_state_dict(head.state_dict())
        (directory / f"{at}_Dense").mkdir(exist_ok=True)
        dense.save(str(directory / f"{at}_Dense"))
        kind = f"{type(dense).__module__}.{type(dense).__name__}"
        modules.insert(at, {"path": f"{at}_Dense", "type": kind})
    numbered = [
        {"idx": i, "name": str(i)} | {k: v for k, v in m.items() if k not in ("idx", "name")}
        for i, m in enumerate(modules)
    ]
    text = json.dumps(numbered, indent=2) + "\n"
    (directory / "modules.json").write_text(text, encoding="utf-8")


def balance_sources(pairs: list[tuple[str, str]], balance: float) -> list[str]:
    """The texts of ``(source, text)`` pairs with each source's count set to its share of the
    total in proportion to ``n ** (1 - balance)``: whole repeats of a small source, then (as for a
    large one) its texts in the order of their SHA-256, so the choice does not depend on file
    order. The result keeps sources in order of first appearance."""
    by_source: dict[str, list[str]] = {}
    for source, text in pairs:
        by_source.setdefault(source, []).append(text)
    weights = {s: len(texts) ** (1 - balance) for s, texts in by_source.items()}
    total, scale = len(pairs), sum(weights.values())
    out: list[str] = []
    for source, texts in by_source.items():
        want = max(1, round(total * weights[source] / scale))
        ordered = sorted(texts, key=lambda t: hashlib.sha256(t.encode("utf-8")).digest())
        repeats, rest = divmod(want, len(texts))
        out += texts * repeats + ordered[:rest]
    return out
