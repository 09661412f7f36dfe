"""A BERT encoder whose layers each keep their own number of attention heads and feed-forward units.

Structured pruning (``distill``'s ``attention_heads`` and ``ffn_size``) leaves layers that stock
BERT cannot describe: its config has one head count and one feed-forward width for every layer,
and the head count also fixes the head size. A pruned student is saved with ``model_type``
:data:`MODEL_TYPE` and the sizes of each layer; :func:`register` teaches ``AutoConfig`` and
``AutoModel`` (and so sentence-transformers) to load such a folder. It is plain code in this
package, not code from the model folder: nothing is executed from a model directory.

Imports torch and transformers: import it where a model is about to be loaded.
"""

from __future__ import annotations

from typing import Any, cast

from torch import nn
from transformers import AutoConfig, AutoModel, BertConfig, BertModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

MODEL_TYPE = "distillguard-pruned-bert"
QKV = ("query", "key", "value")  # a BERT self-attention's projections, one row block per head


_SIZES = ("layer_heads", "layer_ffn_sizes")


class PrunedBertConfig(BertConfig):
    """BERT's config plus the heads and feed-forward units of each layer (``None``: stock BERT's
    ``num_attention_heads`` and ``intermediate_size`` everywhere). A head keeps BERT's size,
    ``hidden_size / num_attention_heads``."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        layer_heads: list[int] | None = None,
        layer_ffn_sizes: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.layer_heads = list(layer_heads) if layer_heads is not None else None
        self.layer_ffn_sizes = list(layer_ffn_sizes) if layer_ffn_sizes is not None else None
        for name, sizes in zip(_SIZES, (self.layer_heads, self.layer_ffn_sizes), strict=True):
            if sizes is not None and (
                len(sizes) != self.num_hidden_layers or any(int(n) < 1 for n in sizes)
            ):
                raise ValueError(
                    f"{name} {sizes}: expected one positive size for each of the "
                    f"{self.num_hidden_layers} layers"
                )


class PrunedBertModel(BertModel):
    """:class:`~transformers.BertModel` with the layer sizes its config names. BERT's attention
    reshapes by head size, not head count, so the forward pass is stock BERT's."""

    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        head_size = config.hidden_size // config.num_attention_heads
        heads = config.layer_heads or [config.num_attention_heads] * config.num_hidden_layers
        ffn = config.layer_ffn_sizes or [config.intermediate_size] * config.num_hidden_layers
        layers: list[Any] = list(self.encoder.layer)
        for layer, n_heads, units in zip(layers, heads, ffn, strict=True):
            attention = layer.attention
            width = n_heads * head_size
            for name in QKV:
                setattr(attention.self, name, resized(getattr(attention.self, name), out=width))
            attention.self.num_attention_heads = n_heads
            attention.self.all_head_size = width
            attention.output.dense = resized(attention.output.dense, into=width)
            layer.intermediate.dense = resized(layer.intermediate.dense, out=units)
            layer.output.dense = resized(layer.output.dense, into=units)
        self.post_init()  # initialise the resized projections as BERT initialises its own


def resized(linear: nn.Linear, *, out: int | None = None, into: int | None = None) -> nn.Linear:
    """A new, uninitialised linear layer like ``linear`` (bias, device, dtype) with ``out``
    outputs and/or ``into`` inputs."""
    return nn.Linear(
        linear.in_features if into is None else into,
        linear.out_features if out is None else out,
        bias=linear.bias is not None,
        device=linear.weight.device,
        dtype=linear.weight.dtype,
    )


def layer_sizes(model: BertModel) -> tuple[list[int], list[int]]:
    """The attention heads and feed-forward units each layer of a BERT encoder has now."""
    layers: list[Any] = list(model.encoder.layer)
    heads = [int(layer.attention.self.num_attention_heads) for layer in layers]
    ffn = [int(layer.intermediate.dense.out_features) for layer in layers]
    return heads, ffn


def as_pruned_bert(model: BertModel) -> PrunedBertModel:
    """``model`` (a BERT encoder whose layers were pruned in place) as a :class:`PrunedBertModel`
    with the same weights, whose config records each layer's sizes, so it saves and loads."""
    heads, ffn = layer_sizes(model)
    values = model.config.to_dict()
    # the sizes are the modules' now, not the old config's
    for key in ("model_type", "architectures", "transformers_version", *_SIZES):
        values.pop(key, None)
    config = PrunedBertConfig(layer_heads=heads, layer_ffn_sizes=ffn, **values)
    config._attn_implementation = model.config._attn_implementation
    pruned = PrunedBertModel(config, add_pooling_layer=model.pooler is not None)
    parameter = next(model.parameters())
    cast(Any, pruned).to(device=parameter.device, dtype=parameter.dtype)
    pruned.load_state_dict(model.state_dict())
    pruned.train(model.training)
    return pruned


def register() -> None:
    """Let ``AutoConfig``/``AutoModel`` (and sentence-transformers) load pruned BERT folders;
    once per process (later calls do nothing)."""
    if MODEL_TYPE in CONFIG_MAPPING:
        return
    AutoConfig.register(MODEL_TYPE, PrunedBertConfig)
    AutoModel.register(PrunedBertConfig, PrunedBertModel)
