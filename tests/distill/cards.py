"""Model folders in real Hugging Face layout: model cards shaped like those on the Hub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from policies.gate import Decision

Run = Callable[..., Decision]
"""The ``run_gate`` fixture: write models, job and org policy, and return the gate's decision."""

_LLAMA_TAGS = ["facebook", "meta", "pytorch", "llama", "llama-3"]
_GATED = {"First Name": "text", "Last Name": "text", "Country": "country"}

# name -> model card front matter, shaped like the real cards on the Hub (gating prompts shortened)
CARDS: dict[str, dict[str, Any]] = {
    "llama2": {
        "language": ["en"],
        "license": "llama2",
        "pipeline_tag": "text-generation",
        "tags": ["facebook", "meta", "pytorch", "llama", "llama-2"],
        "extra_gated_heading": "Access Llama 2 on Hugging Face",
    },
    "llama3": {
        "language": ["en"],
        "license": "llama3",
        "pipeline_tag": "text-generation",
        "tags": _LLAMA_TAGS,
        "extra_gated_fields": _GATED,
        "extra_gated_prompt": "### META LLAMA 3 COMMUNITY LICENSE AGREEMENT\nMeta Llama 3 "
        "Version Release Date: April 18, 2024",
    },
    "llama3.1": {
        "language": ["en", "de", "fr", "it", "pt", "hi", "es", "th"],
        "license": "llama3.1",
        "base_model": "meta-llama/Meta-Llama-3.1-8B",
        "pipeline_tag": "text-generation",
        "tags": _LLAMA_TAGS,
        "extra_gated_prompt": "### LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 "
        "Version Release Date: July 23, 2024",
        "extra_gated_fields": _GATED,
    },
    "llama3.2": {
        "license": "llama3.2",
        "base_model": "meta-llama/Llama-3.2-1B",
        "pipeline_tag": "text-generation",
        "tags": _LLAMA_TAGS,
    },
    "llama3.3": {
        "license": "llama3.3",
        "base_model": "meta-llama/Llama-3.1-70B",
        "pipeline_tag": "text-generation",
        "tags": _LLAMA_TAGS,
    },
    "llama4": {
        "library_name": "transformers",
        "license": "other",
        "license_name": "llama4",
        "base_model": "meta-llama/Llama-4-Scout-17B-16E",
        "pipeline_tag": "image-text-to-text",
    },
    "gemma": {
        "license": "gemma",
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "base_model": "google/gemma-2-2b",
        "extra_gated_heading": "Access Gemma on Hugging Face",
        "extra_gated_button_content": "Acknowledge license",
    },
    "deepseek-r1": {"license": "mit", "library_name": "transformers"},
    "deepseek-v3": {
        "license": "other",
        "license_name": "deepseek",
        "license_link": "https://github.com/deepseek-ai/DeepSeek-V3/blob/main/LICENSE-MODEL",
        "library_name": "transformers",
    },
    "tongyi": {
        "language": ["zh", "en"],
        "tags": ["qwen"],
        "pipeline_tag": "text-generation",
        "license": "other",
        "license_name": "tongyi-qianwen",
        "license_link": "https://huggingface.co/Qwen/Qwen-7B/blob/main/LICENSE",
    },
    "tongyi-research": {
        "language": ["zh", "en"],
        "tags": ["qwen"],
        "license": "other",
        "license_name": "tongyi-qianwen-research",
        "license_link": "https://huggingface.co/Qwen/Qwen-1_8B/blob/main/LICENSE",
    },
    "qwen-research": {
        "license": "other",
        "license_name": "qwen-research",
        "license_link": "https://huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/LICENSE",
        "language": ["en"],
        "pipeline_tag": "text-generation",
        "base_model": "Qwen/Qwen2.5-3B",
        "tags": ["chat"],
        "library_name": "transformers",
    },
    "qwen-apache": {
        "license": "apache-2.0",
        "license_link": "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/blob/main/LICENSE",
        "language": ["en"],
        "pipeline_tag": "text-generation",
        "base_model": "Qwen/Qwen2.5-0.5B",
        "tags": ["chat"],
        "library_name": "transformers",
    },
    "mistral-large": {
        "language": ["en", "fr", "de"],
        "license": "other",
        "license_name": "mrl",
        "license_link": "https://mistral.ai/licenses/MRL-0.1.md",
        "extra_gated_description": "If you want to learn more about how we process "
        "your personal data, please read our Privacy Policy.",
    },
    "falcon2": {
        "language": ["en"],
        "license": "other",
        "license_name": "falcon-2-11b-license",
        "license_link": "https://falconllm-staging.tii.ae/falcon-2-terms-and-conditions.html",
    },
    "bloomz": {
        "license": "bigscience-bloom-rail-1.0",
        "language": ["en", "fr"],
        "pipeline_tag": "text-generation",
    },
    "openrail-m": {"license": "bigscience-openrail-m", "pipeline_tag": "text-generation"},
    "mystery": {"license": "other", "pipeline_tag": "text-generation"},
    "r1-distill-llama": {
        "license": "mit",
        "library_name": "transformers",
        "base_model": ["meta-llama/Llama-3.1-8B"],
    },
}


def write_model(
    root: Path, name: str, card: dict[str, Any], licence_text: str | None = None
) -> Path:
    """A model folder with a model card (YAML front matter) and optionally a LICENSE file."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if card:
        front = yaml.safe_dump(card, sort_keys=False)
        (folder / "README.md").write_text(f"---\n{front}---\n\n# {name}\n", encoding="utf-8")
    (folder / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    if licence_text is not None:
        (folder / "LICENSE").write_text(licence_text, encoding="utf-8")
    return folder
