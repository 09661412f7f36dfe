"""One detection run over the warehouse: features → clusters → behaviour → graph → rings → flags.

``run_detection`` is the Python API behind ``distillguard detect``. Per-prompt work is cached by
prompt hash (features, embeddings), so an incremental run (``since``) only processes new prompts;
everything set-based is rebuilt from all calls, so it gives the same flags as a full run over the
same data. ``until`` bounds the run to calls before a time (the evaluation replays history with it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from detectors import sql
from detectors.behaviour import FEATURES as BEHAVIOUR_FEATURES
from detectors.behaviour import BehaviourDetector
from detectors.clusters import build_embedding_clusters, cluster_statistics
from detectors.embeddings import (
    Embedder,
    load_embedder,
    model_name,
    resolve_device,
    resolve_precision,
)
from detectors.engine import register, run
from detectors.exceptions import DetectorError, IncrementalMismatch, NothingToDetect
from detectors.features import (
    clear_prompt_cache,
    derive_templates,
    feature_params,
    featurize_new_prompts,
    unfeaturized_prompts,
)
from detectors.graph import build_graph, communities
from detectors.prada import PradaDetector, vectorize_prompts
from detectors.scoring import score_rings_and_accounts, write_verdicts
from detectors.settings import get_settings
from ingest.warehouse import Warehouse, checked_size
from policies.detection import DetectionPolicy, load_detection_policy
from policies.loader import LoadedPolicy

Stage = Callable[[str], None]


@dataclass(frozen=True)
class RunSummary:
    """What one detection run did and found."""

    run_id: int
    mode: str
    since: datetime | None
    until: datetime | None
    n_calls: int
    n_accounts: int
    n_new_prompts: int
    n_templates: int
    n_selected: int
    n_embedded: int
    n_clusters: int
    n_edges: int
    n_rings: int
    n_flagged_rings: int
    n_flagged: int
    policy_sha256: str
    device: str
    model: str
    precision: str = "float32"
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("since", "until"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


class _Clock:
    def __init__(self, on_stage: Stage | None) -> None:
        self.on_stage = on_stage
        self.timings: dict[str, float] = {}
        self._name: str | None = None
        self._start = 0.0

    def stage(self, name: str) -> None:
        self.stop()
        self._name, self._start = name, time.perf_counter()
        if self.on_stage is not None:
            self.on_stage(name)

    def stop(self) -> None:
        if self._name is not None:
            self.timings[self._name] = round(time.perf_counter() - self._start, 3)
            self._name = None


TEMP_TABLES = (
    "scope",
    "scope_accounts",
    "new_prompts",
    "enriched",
    "members",
    "prompt_template_rows",
    "template_labels",
)


def run_detection(
    wh: Warehouse,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    device: str = "auto",
    embed_budget: int | None = None,
    model_path: Path | None = None,
    policy: LoadedPolicy[DetectionPolicy] | None = None,
    on_stage: Stage | None = None,
    memory_limit: str | None = None,
    precision: str | None = None,
) -> RunSummary:
    """Run every detector over the warehouse and record rings and flags with their evidence.

    The run is one transaction: if it fails, the warehouse is left as it was before it.
    """
    loaded = policy or load_detection_policy()
    settings = get_settings()  # what a caller leaves unset (the control plane's scheduled runs)
    model_path = model_path if model_path is not None else settings.model_path
    budget = loaded.model.embeddings.budget if embed_budget is None else embed_budget
    if budget < 0:
        raise ValueError(f"the embedding budget must be 0 or more, got {budget}")
    clock = _Clock(on_stage)
    clock.stage("setup")
    if since is not None:
        _check_incremental(wh, loaded.sha256)
    resolved_device = resolve_device(device)
    resolved_precision = resolve_precision(precision or settings.precision, resolved_device)
    try:
        limit = checked_size(memory_limit or settings.memory_limit, "DETECT_MEMORY_LIMIT")
    except ValueError as exc:
        raise DetectorError(str(exc)) from exc
    try:
        with wh.memory_limit(limit, "DETECT_MEMORY_LIMIT"), wh.transaction():
            return _run(
                wh,
                loaded,
                clock,
                since,
                until,
                resolved_device,
                resolved_precision,
                budget,
                model_path,
            )
    finally:
        for table in TEMP_TABLES:
            wh.execute(f"DROP TABLE IF EXISTS {table}")


def _run(
    wh: Warehouse,
    loaded: LoadedPolicy[DetectionPolicy],
    clock: _Clock,
    since: datetime | None,
    until: datetime | None,
    device: str,
    precision: str,
    budget: int,
    model_path: Path | None,
) -> RunSummary:
    rules = loaded.model
    mode = "incremental" if since is not None else "full"
    model = model_name(model_path)
    run_id = int(wh.scalar("SELECT coalesce(max(run_id), 0) + 1 FROM detection_runs"))
    started = datetime.now(UTC)
    run(wh, sql.scope_sql(until is not None), {"until": until})
    n_calls = int(wh.scalar("SELECT count(*) FROM scope"))
    if n_calls == 0:
        window = f" before {until.isoformat()}" if until is not None else ""
        raise NothingToDetect(f"the warehouse {wh.path} has no calls{window} to run detection on")
    run(wh, sql.scope_accounts_sql(until is not None), {"until": until})
    n_accounts = int(wh.scalar("SELECT count(*) FROM scope_accounts"))

    clock.stage("features")
    if mode == "full":
        clear_prompt_cache(wh)
    n_new = featurize_new_prompts(wh, rules, since=since, until=until)
    missing = unfeaturized_prompts(wh)
    if missing:
        raise IncrementalMismatch(
            f"{missing} prompts from before --since {since} were never processed; run a full "
            "`distillguard detect` (without --since) first"
        )
    n_templates = derive_templates(wh, rules)

    clock.stage("embeddings")
    loaded_models: list[Embedder] = []

    def embedder() -> Embedder:
        if not loaded_models:
            loaded_models.append(
                load_embedder(
                    model_path,
                    device,
                    batch_size=rules.embeddings.batch_size,
                    max_seq_length=rules.embeddings.max_seq_length,
                    precision=precision,
                    name=model,
                )
            )
        return loaded_models[0]

    stage = build_embedding_clusters(
        wh,
        model=model,
        budget=budget,
        per_account=rules.embeddings.per_account_sample,
        threshold=rules.embeddings.cluster_similarity,
        embedder=embedder,
    )

    clock.stage("clusters")
    run(wh, sql.enriched_sql(), {**feature_params(rules), "model": model})
    cluster_statistics(wh)

    clock.stage("behaviour")
    _account_features(wh, rules)
    clock.stage("baseline")
    _prada(wh, rules, until)

    clock.stage("graph")
    n_edges = build_graph(wh, rules, n_accounts)
    groups = communities(
        wh.fetchall("SELECT src, dst, weight FROM graph_edges"),
        min_weight=rules.graph.min_edge_weight,
        resolution=rules.graph.resolution,
        min_size=rules.rings.min_size,
    )

    clock.stage("rings")
    rings, accounts = score_rings_and_accounts(wh, rules, groups)
    write_verdicts(wh, run_id, rings, accounts)
    clock.stop()

    summary = RunSummary(
        run_id=run_id,
        mode=mode,
        since=since,
        until=until,
        n_calls=n_calls,
        n_accounts=n_accounts,
        n_new_prompts=n_new,
        n_templates=n_templates,
        n_selected=stage.selected,
        n_embedded=stage.embedded,
        n_clusters=stage.clusters,
        n_edges=n_edges,
        n_rings=len(rings),
        n_flagged_rings=sum(1 for r in rings if r["flagged"]),
        n_flagged=sum(1 for a in accounts if a["flagged"]),
        policy_sha256=loaded.sha256,
        device=device,
        model=model,
        precision=precision,
        timings=clock.timings,
    )
    wh.execute(
        "INSERT INTO detection_runs VALUES ($run_id, $started, now(), $mode, $since, $sha, $model, "
        "$device, $budget, $n_calls, $n_accounts, $n_new, $n_embedded, $n_rings, $n_flagged, "
        "$timings, $precision)",
        {
            "run_id": run_id,
            "started": started,
            "mode": mode,
            "since": since,
            "sha": loaded.sha256,
            "model": model,
            "device": device,
            "budget": budget,
            "n_calls": n_calls,
            "n_accounts": n_accounts,
            "n_new": n_new,
            "n_embedded": stage.embedded,
            "n_rings": summary.n_rings,
            "n_flagged": summary.n_flagged,
            "timings": json.dumps(clock.timings),
            "precision": precision,
        },
    )
    return summary


def _check_incremental(wh: Warehouse, sha256: str) -> None:
    last = wh.fetchone(
        "SELECT run_id, policy_sha256 FROM detection_runs ORDER BY run_id DESC LIMIT 1"
    )
    if last is None:
        raise IncrementalMismatch(
            "--since needs an earlier detection run on this warehouse; run a full "
            "`distillguard detect` first"
        )
    if last[1] != sha256:
        raise IncrementalMismatch(
            f"the detection policy changed since run {last[0]} (sha256 {last[1][:12]} → "
            f"{sha256[:12]}); run a full `distillguard detect` so every prompt is scored by it"
        )


# -- per-account detectors ------------------------------------------------------------------------
def _account_features(wh: Warehouse, rules: DetectionPolicy) -> None:
    wh.execute("DELETE FROM account_features")
    run(
        wh,
        sql.account_features_sql(),
        {
            "heavy_calls": rules.behaviour.heavy_calls_per_day,
            "suspicious_cluster": rules.behaviour.suspicious_cluster,
        },
    )
    rows = wh.fetchall(
        "SELECT account_id, calls_per_active_day, active_hours, 1 / (1 + interarrival_cv), "
        "token_ratio, reasoning_rate, templated_share, distinct_prompt_ratio "
        "FROM account_features ORDER BY account_id"
    )
    if not rows:
        return
    matrix = np.array([[np.nan if v is None else v for v in r[1:]] for r in rows], dtype=float)
    assert matrix.shape[1] == len(BEHAVIOUR_FEATURES)
    detector = BehaviourDetector(threshold=rules.behaviour.threshold).fit(matrix)
    _update_scores(
        wh,
        "behaviour_score",
        [r[0] for r in rows],
        detector.score_samples(matrix),
    )


def _update_scores(
    wh: Warehouse, column: str, ids: list[str], scores: np.ndarray, flags: np.ndarray | None = None
) -> None:
    if column not in ("behaviour_score", "prada_score"):
        raise ValueError(f"not a score column: {column}")
    data: dict[str, pa.Array] = {
        "account_id": pa.array(ids, pa.string()),
        "score": pa.array(scores.astype(float), pa.float64()),
    }
    assignments = f"{column} = u.score"
    if flags is not None:
        data["flag"] = pa.array(flags.astype(bool), pa.bool_())
        assignments += ", prada_flagged = u.flag"
    register(wh, "score_updates", pa.table(data))
    wh.execute(
        f"UPDATE account_features SET {assignments} FROM score_updates AS u "  # noqa: S608
        "WHERE account_features.account_id = u.account_id"
    )
    wh.execute("DROP TABLE score_updates")


def _prada(wh: Warehouse, rules: DetectionPolicy, until: datetime | None) -> None:
    rows = run(
        wh,
        sql.prada_sample_sql(until is not None),
        {"max_calls": rules.prada.max_calls, "until": until},
    ).fetchall()
    if not rows:
        return
    texts = sorted({text for _, text in rows})
    index = {text: i for i, text in enumerate(texts)}
    vectors = vectorize_prompts(texts)
    ids: list[str] = []
    per_account: list[Any] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][0] != rows[start][0]:
            ids.append(rows[start][0])
            per_account.append(vectors[[index[rows[j][1]] for j in range(start, i)]])
            start = i
    detector = PradaDetector(
        threshold=rules.prada.threshold,
        min_calls=rules.prada.min_calls,
        max_calls=rules.prada.max_calls,
    ).fit(per_account)
    scores = detector.score_samples(per_account)
    _update_scores(wh, "prada_score", ids, scores, detector.decide(scores))
