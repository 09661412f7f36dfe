"""Hidden-state distillation settings: DistilBERT-style layer maps, sentence embeddings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distill.config import TrainConfig


class HiddenStateConfig(TrainConfig):
    """Match the student's hidden states and/or pooled embeddings to the teacher's."""

    student_layers: list[int] | None = Field(
        None,
        description="initialise the student from these layers of its base model (e.g. [0, 5] of a "
        "6-layer teacher); the rest are dropped",
    )
    ffn_size: int | None = Field(
        None,
        gt=0,
        description="prune every student layer's feed-forward block to this many units (BERT-style "
        "layers), keeping those with the largest mean activation x output-weight norm on the "
        "training texts: a faster student, at some cost the distillation then recovers",
    )
    attention_heads: int | None = Field(
        None,
        gt=0,
        description="prune every student layer's attention to this many heads (BERT encoders), "
        "keeping those whose output adds the most on the training texts; heads keep their size, "
        "so the student saves as a distillguard pruned BERT (per-layer sizes), which "
        "distillguard's tools load. Pruned once, before ffn_size's prune and training",
    )
    prune_until: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="with ffn_size: reach it gradually over this share of the training steps, "
        "masking the least important units in prune_rounds rounds on a cubic schedule (most at "
        "first) with importance measured again each round, so the student adapts as it shrinks; "
        "it is cut to size when saved. 0 prunes once, before training",
    )
    prune_rounds: int = Field(
        8, ge=1, description="masking rounds of a gradual prune (prune_until above 0)"
    )
    layer_map: dict[int, int] = Field(
        default_factory=dict,
        description="student hidden-state index -> teacher hidden-state index (0 = embeddings)",
    )
    hidden_loss: Literal["mse", "cosine"] = Field("mse", description="loss between mapped layers")
    hidden_weight: float = Field(1.0, ge=0, description="weight of the layer-map loss")
    embedding_loss: Literal["mse", "cosine", "none"] = Field(
        "mse", description="loss between mean-pooled sentence embeddings (none: layer map only)"
    )
    embedding_weight: float = Field(1.0, ge=0, description="weight of the embedding loss")
    pooled_head: Literal["none", "linear"] = Field(
        "none",
        description="linear: a learned linear map (initialised to the identity where widths "
        "agree) on the student's pooled embedding, trained by the embedding loss and saved as a "
        "sentence-transformers Dense layer after pooling: one width x width product per text, "
        "nothing beside the encoder, mixing dimensions that the encoder's final layer norm only "
        "scales one by one. A student folder that has one trains it on",
    )
    crop_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of training texts replaced, at each step, by a random run of at least "
        "a third of their words (the teacher embeds the crop): more inputs from the same text",
    )
    word_substitution: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="chance that each word of a training text is replaced, at each step, by a "
        "word drawn from the training texts by frequency (the teacher embeds the result): "
        "inputs near the data that it does not hold, as TinyBERT augments small data",
    )
    substitution_words: Literal["training", "vocabulary"] = Field(
        "training",
        description="where word_substitution draws its words: training, the words of the "
        "training texts by frequency; vocabulary, every whole word of the student's tokenizer "
        "alike (one token, letters only, no special tokens), so that tokens the training texts "
        "rarely or never hold are learnt in context too",
    )
    source_balance: float = Field(
        0.0,
        ge=0,
        le=1,
        description="even out the data sources in the training texts: a source of n texts gets "
        "a share of each epoch in proportion to n ** (1 - source_balance), small sources "
        "repeated and large ones cut (in a fixed hash order) to keep the epoch's length; 0 keeps "
        "the data as it is, 1 gives every source the same share; held-out records are untouched",
    )
    cache_teacher: bool = Field(
        False,
        description="with a layer_map: run the teacher once over the training texts before "
        "training and keep the mapped layers' token states (float16 where they fit: about 2 x "
        "tokens x width bytes per mapped layer, memory-mapped from the run's cache folder, which "
        "--resume reuses), so that steps run the teacher only on the texts that crops or word "
        "substitutions changed. Without a layer map the pooled targets are cached anyway",
    )
    train_texts: Literal["prompts", "records"] = Field(
        "prompts",
        description="what the student learns from: each training prompt, or every text of its "
        "record (later dialogue turns, reference solutions, code): more distinct inputs from the "
        "same licensed data; held-out records stay out and evaluation stays on prompts",
    )
    freeze_embeddings: bool = Field(
        False,
        description="keep the student's embedding layer (word, position and token-type "
        "embeddings and their norm) at the base model's weights, so tokens the training text "
        "rarely shows keep embeddings the layers still read correctly",
    )
    dropout: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="set every dropout rate of the student to this while training (0 suits "
        "matching a deterministic teacher); unset keeps the base model's",
    )

    @model_validator(mode="after")
    def _something_to_learn(self) -> HiddenStateConfig:
        if self.embedding_loss == "none" and not self.layer_map:
            raise ValueError("embedding_loss is none and layer_map is empty: nothing to distil")
        if self.student_layers is not None:
            if not self.student_layers:
                raise ValueError("student_layers must name at least one layer")
            if any(i < 0 for i in self.student_layers):
                raise ValueError(f"student_layers must be >= 0, got {self.student_layers}")
        if self.pooled_head != "none" and self.embedding_loss == "none":
            raise ValueError("pooled_head is trained by the embedding loss: set embedding_loss")
        if self.substitution_words != "training" and self.word_substitution == 0:
            raise ValueError("substitution_words needs word_substitution above 0")
        if self.prune_until > 0 and self.ffn_size is None:
            raise ValueError("prune_until needs ffn_size: the size to prune the student to")
        for s, t in self.layer_map.items():
            if s < 0 or t < 0:
                raise ValueError(f"layer_map indices must be >= 0, got {s}: {t}")
        return self
