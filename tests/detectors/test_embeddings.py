"""Embeddings with the bundled MiniLM on the CPU, the cache, and leader clustering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.clusters import leader_clusters
from detectors.embeddings import (
    cached_vectors,
    cpu_has_bfloat16,
    embed_and_cache,
    load_embedder,
    missing_embeddings,
    model_name,
    resolve_device,
    resolve_precision,
)
from detectors.exceptions import DeviceUnavailable, ModelUnavailable
from ingest.warehouse import Warehouse

PROMPTS = {
    "h1": "Solve step by step: a train travels 60 km in 1.5 hours. What is its speed?",
    "h2": "Work through it carefully: a car goes 90 km in 2 hours. How fast is it going?",
    "h3": "Write a short poem about the sea at night.",
}


def test_embeddings_are_cached_by_prompt_hash(tmp_path: Path) -> None:
    embedder = load_embedder(None, "cpu", batch_size=8, max_seq_length=128)
    assert embedder.name == "all-MiniLM-L6-v2" and embedder.device == "cpu"
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        assert missing_embeddings(wh, list(PROMPTS), embedder.name) == ["h1", "h2", "h3"]
        done = embed_and_cache(wh, list(PROMPTS), lambda hs: {h: PROMPTS[h] for h in hs}, embedder)
        assert done == 3
        assert missing_embeddings(wh, list(PROMPTS), embedder.name) == []
        assert missing_embeddings(wh, ["h1"], "another-model") == ["h1"]
        vectors = cached_vectors(wh, ["h3", "h1", "h2"], embedder.name)
    assert vectors.shape == (3, embedder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar = float(vectors[1] @ vectors[2])  # the two speed problems
    unrelated = float(vectors[1] @ vectors[0])  # a speed problem and the poem
    assert similar > unrelated + 0.2


def test_a_model_is_cached_under_its_content_not_only_its_folder_name(tmp_path: Path) -> None:
    import shutil

    from detectors.embeddings import default_model_path

    assert model_name(None) == "all-MiniLM-L6-v2"
    first, second = tmp_path / "a" / "student", tmp_path / "b" / "student"
    shutil.copytree(default_model_path(), first)
    shutil.copytree(default_model_path(), second)
    name = model_name(first)
    assert name.startswith("student@") and model_name(second) == name  # same model, same vectors
    (first / "run").mkdir()
    (first / "run" / "metrics.jsonl").write_text("{}\n")  # a job's run folder is not the model
    (first / "README.md").write_text("a new card")
    assert model_name(first) == name
    weights = next(first.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")  # retrained in place
    assert model_name(first) not in (name, "student")
    assert load_embedder(second, "cpu", batch_size=8, max_seq_length=64).name == name
    with pytest.raises(ModelUnavailable, match="no sentence-transformers model directory"):
        model_name(tmp_path / "nowhere")


def test_leader_clustering_in_order() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    near_a = np.array([0.96, 0.28])
    vectors = np.vstack([a, b, near_a, a]).astype(np.float32)
    assigned, similarity = leader_clusters(vectors, threshold=0.9)
    assert assigned.tolist() == [0, 1, 0, 0]
    assert similarity[2] == pytest.approx(0.96, abs=1e-3)
    # Adding rows later never changes the clusters of the earlier ones.
    more = np.vstack([vectors, b]).astype(np.float32)
    assert leader_clusters(more, threshold=0.9)[0].tolist()[:4] == assigned.tolist()


def test_missing_model_and_device_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="no sentence-transformers model directory"):
        load_embedder(tmp_path / "nowhere", "cpu", batch_size=8, max_seq_length=64)
    assert resolve_device("cpu") == "cpu"
    import torch

    if torch.cuda.is_available():
        assert resolve_device("auto") == "cuda"
    else:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(DeviceUnavailable, match="no CUDA device"):
            resolve_device("cuda")


def test_precision_follows_the_device_and_refuses_what_it_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_precision("auto", "cpu") == "float32"
    assert resolve_precision("auto", "cuda") == "float16"
    with pytest.raises(DeviceUnavailable, match="float16 embedding is for CUDA"):
        resolve_precision("float16", "cpu")
    with pytest.raises(DeviceUnavailable, match="unknown precision 'int8'"):
        resolve_precision("int8", "cpu")
    monkeypatch.setattr("detectors.embeddings.cpu_has_bfloat16", lambda: False)
    with pytest.raises(DeviceUnavailable, match="no native bfloat16"):
        load_embedder(None, "cpu", batch_size=8, max_seq_length=64, precision="bfloat16")


@pytest.mark.skipif(not cpu_has_bfloat16(), reason="this CPU has no native bfloat16")
def test_bfloat16_vectors_match_float32_ones() -> None:
    texts = list(PROMPTS.values()) * 3
    full = load_embedder(None, "cpu", batch_size=8, max_seq_length=128)
    half = load_embedder(None, "cpu", batch_size=8, max_seq_length=128, precision="bfloat16")
    assert (full.precision, half.precision) == ("float32", "bfloat16")
    a, b = full.encode(texts), half.encode(texts)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.999
    assert not np.array_equal(a, b)  # bfloat16 did run
