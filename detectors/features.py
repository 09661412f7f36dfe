"""Per-call content features: length, language, reasoning elicitation, template and question.

The per-prompt part (features and segments) is a pure function of the prompt text, computed once
per distinct prompt and cached by its hash; which segments are template text is decided per run
over all prompts in scope (:func:`derive_templates`), so a template is found the same way whether
its prompts arrived in one run or in several.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detectors import sql
from detectors.engine import run
from ingest.warehouse import Warehouse
from policies.detection import DetectionPolicy


def feature_params(policy: DetectionPolicy) -> dict[str, Any]:
    """The run parameters the feature SQL names."""
    features = policy.features
    return {
        **sql.reasoning_params(features.reasoning_patterns),
        "segment_split": sql.SEGMENT_SPLIT,
        "min_segment": features.template.min_segment_chars,
        "min_prompts": features.template.min_prompts,
        "per_account": features.template.min_prompts_per_account,
        "question_min": features.template.question_min_chars,
        "reasoning_threshold": features.reasoning_threshold,
    }


def clear_prompt_cache(wh: Warehouse) -> None:
    """Forget per-prompt features (a full run recomputes them; embeddings are kept)."""
    wh.execute("DELETE FROM prompt_features")
    wh.execute("DELETE FROM prompt_segments")


def featurize_new_prompts(
    wh: Warehouse,
    policy: DetectionPolicy,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Compute features and segments of every prompt not seen before; return how many."""
    params = {**feature_params(policy), "since": since, "until": until}
    run(wh, sql.new_prompts_sql(since is not None, until is not None), params)
    count = int(wh.scalar("SELECT count(*) FROM new_prompts"))
    if count:
        run(wh, sql.insert_prompt_features_sql(policy.features.reasoning_patterns), params)
        run(wh, sql.insert_prompt_segments_sql(), params)
    wh.execute("DROP TABLE new_prompts")
    return count


def unfeaturized_prompts(wh: Warehouse) -> int:
    """Prompts in scope without features (calls before ``--since`` never processed)."""
    return int(
        wh.scalar(
            "SELECT count(*) FROM (SELECT DISTINCT prompt_hash FROM scope) "
            "ANTI JOIN prompt_features USING (prompt_hash)"
        )
    )


def derive_templates(wh: Warehouse, policy: DetectionPolicy) -> int:
    """Decide template text over all prompts in scope; return the number of templates."""
    params = feature_params(policy)
    run(wh, sql.prompt_templates_sql(), params)
    wh.execute("DELETE FROM prompt_templates")
    run(wh, sql.insert_prompt_templates_sql(), params)
    run(wh, sql.template_labels_sql(), params)
    return int(wh.scalar("SELECT count(*) FROM template_labels"))
