"""Query clusters: templates (from :mod:`detectors.features`) and embedding clusters.

Embedding clusters use leader clustering in first-seen order: a prompt joins the most similar
existing leader when the cosine similarity reaches the policy's threshold, else it leads a new
cluster. Clusters are named after their leader, so a later run keeps earlier clusters and assigns
new prompts to them, and a full run over the same data makes the same clusters. Only a bounded
selection of prompts is embedded (:func:`detectors.sql.embedding_selection_sql`); the others join
the cluster most of their template's embedded prompts are in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from detectors import sql
from detectors.embeddings import Embedder, cached_vectors, embed_and_cache, missing_embeddings
from detectors.engine import register, run
from ingest.warehouse import Warehouse


@dataclass(frozen=True)
class ClusterStage:
    """What the embedding stage did in one run."""

    selected: int
    embedded: int
    clusters: int


def leader_clusters(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Leader clustering of unit vectors in row order: (leader row of each row, its similarity)."""
    n = len(vectors)
    leaders: list[int] = []
    assigned = np.empty(n, dtype=np.int64)
    similarity = np.ones(n, dtype=np.float64)
    capacity = 256
    leader_matrix = np.empty((capacity, vectors.shape[1] if n else 0), dtype=np.float32)
    for i in range(n):
        if leaders:
            sims = leader_matrix[: len(leaders)] @ vectors[i]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                assigned[i] = leaders[best]
                similarity[i] = float(sims[best])
                continue
        if len(leaders) == capacity:
            capacity *= 2
            grown = np.empty((capacity, leader_matrix.shape[1]), dtype=np.float32)
            grown[: len(leaders)] = leader_matrix[: len(leaders)]
            leader_matrix = grown
        leader_matrix[len(leaders)] = vectors[i]
        leaders.append(i)
        assigned[i] = i
    return assigned, similarity


def build_embedding_clusters(
    wh: Warehouse,
    *,
    model: str,
    budget: int,
    per_account: int,
    threshold: float,
    embedder: Callable[[], Embedder],
) -> ClusterStage:
    """Select, embed what is not cached, cluster and assign every prompt in scope it can."""
    selection = wh.fetchall(
        sql.embedding_selection_sql(), {"budget": budget, "per_account": per_account}
    )
    hashes = [row[0] for row in selection]
    missing = missing_embeddings(wh, hashes, model)
    embedded = 0
    if missing:
        embedded = embed_and_cache(wh, missing, lambda part: prompt_texts(wh, part), embedder())
    wh.execute("DELETE FROM prompt_clusters WHERE model = $model", {"model": model})
    wh.execute("DELETE FROM embedding_leaders WHERE model = $model", {"model": model})
    if not hashes:
        return ClusterStage(0, embedded, 0)
    # Leader clustering in first-seen order (the selection query gives first_seen).
    order = sorted(range(len(hashes)), key=lambda i: (selection[i][1], hashes[i]))
    ordered = [hashes[i] for i in order]
    vectors = cached_vectors(wh, ordered, model)
    assigned, similarity = leader_clusters(vectors, threshold)
    cluster_ids = [f"e{ordered[a][:12]}" for a in assigned]
    register(
        wh,
        "new_clusters",
        pa.table(
            {
                "prompt_hash": pa.array(ordered, pa.string()),
                "model": pa.array([model] * len(ordered), pa.string()),
                "cluster_id": pa.array(cluster_ids, pa.string()),
                "similarity": pa.array(similarity, pa.float64()),
            }
        ),
    )
    wh.execute("INSERT INTO prompt_clusters SELECT * FROM new_clusters")
    wh.execute("DROP TABLE new_clusters")
    leader_rows = sorted(set(assigned.tolist()))
    register(
        wh,
        "new_leaders",
        pa.table(
            {
                "cluster_id": pa.array([f"e{ordered[i][:12]}" for i in leader_rows], pa.string()),
                "model": pa.array([model] * len(leader_rows), pa.string()),
                "prompt_hash": pa.array([ordered[i] for i in leader_rows], pa.string()),
                "seq": pa.array(leader_rows, pa.int64()),
            }
        ),
    )
    wh.execute("INSERT INTO embedding_leaders SELECT * FROM new_leaders")
    wh.execute("DROP TABLE new_leaders")
    run(wh, sql.template_cluster_sql(), {"model": model})
    return ClusterStage(len(hashes), embedded, len(leader_rows))


def prompt_texts(wh: Warehouse, hashes: Sequence[str]) -> dict[str, str]:
    """The text of each prompt hash, read back from the calls."""
    register(wh, "wanted", pa.table({"prompt_hash": pa.array(list(hashes), pa.string())}))
    rows = wh.fetchall(sql.prompt_texts_sql())
    wh.execute("DROP TABLE wanted")
    return {h: text for h, text in rows}


def cluster_statistics(wh: Warehouse) -> int:
    """Rebuild the ``clusters`` table (templates and embedding clusters) from ``enriched``."""
    wh.execute("DELETE FROM clusters")
    for kind in sql.CLUSTER_KEYS:
        run(wh, sql.cluster_stats_sql(kind))
    return int(wh.scalar("SELECT count(*) FROM clusters"))
