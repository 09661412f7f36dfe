# ruff: noqa: S608  -- this module builds SQL text; identifiers come only from its allow-lists
"""The detectors' set-based logic as SQL, built by pure functions and run by the warehouse adapter.

Every function here takes plain arguments and returns SQL text; values are bound by the caller as
``$name`` parameters. The only identifiers interpolated are column names and edge kinds, and each
comes from an allow-list in this module. Keeping the logic as SQL text is what lets another engine
(Spark) run the same detectors later.

Temporary tables built along a run, in order:

``scope``          the calls in the run (``ts < $until`` for a replay), with their prompt hash
``scope_accounts`` the accounts of the run: every account with calls in scope, and every account
                   created before ``$until`` (a dormant ring member still has links)
``new_prompts``    distinct prompts not yet featurised (``ts >= $since`` for an incremental run)
``enriched``       one row per call in scope with its features, template, question and cluster
``account_keys``   (account, kind, key): things an account shares with others
``members``        (account, ring): the candidate rings found on the graph
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.detection import ReasoningPattern

# -- allow-lists ----------------------------------------------------------------------------------
CLUSTER_KEYS = {"template": "template_id", "embedding": "cluster_id"}
EDGE_KINDS = (
    "payment",
    "signup_net",
    "client_net",
    "user_agent",
    "signup_wave",
    "template",
    "cluster",
)

# Sentences and lines: the unit templates are built from.
SEGMENT_SPLIT = r"[.!?;]+\s+|:\s+|\s*\n+\s*"


def _allowed(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {sorted(allowed)}")
    return value


# -- scope ----------------------------------------------------------------------------------------
def scope_sql(bounded: bool) -> str:
    """The calls of this run with their prompt hash; ``bounded`` adds ``ts < $until``."""
    where = "WHERE ts < $until" if bounded else ""
    return f"""
CREATE OR REPLACE TEMP TABLE scope AS
SELECT call_id, account_id, ts, md5(prompt) AS prompt_hash, client_ip, user_agent,
       prompt_tokens, completion_tokens
FROM calls {where}
"""


def scope_accounts_sql(bounded: bool) -> str:
    """Accounts with calls in scope, and accounts created before ``$until`` (all when unbounded)."""
    where = "WHERE created_at < $until" if bounded else ""
    return f"""
CREATE OR REPLACE TEMP TABLE scope_accounts AS
SELECT account_id FROM accounts {where}
UNION
SELECT DISTINCT account_id FROM scope
"""


def new_prompts_sql(since: bool, bounded: bool) -> str:
    """Distinct prompts of the window that have no features yet (the per-prompt work to do)."""
    conditions = []
    if since:
        conditions.append("ts >= $since")
    if bounded:
        conditions.append("ts < $until")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"""
CREATE OR REPLACE TEMP TABLE new_prompts AS
SELECT n.prompt_hash, n.prompt, n.first_seen
FROM (
    SELECT md5(prompt) AS prompt_hash, any_value(prompt) AS prompt, min(ts) AS first_seen
    FROM calls {where}
    GROUP BY 1
) AS n
ANTI JOIN prompt_features AS f USING (prompt_hash)
"""


# -- per-prompt features --------------------------------------------------------------------------
def reasoning_score_expr(patterns: Sequence[ReasoningPattern], text: str = "lp") -> str:
    """``1 - prod(1 - w)`` over matching patterns, as ``1 - exp(sum(ln(1 - w)))``.

    Binds ``$rp{i}`` (pattern) and ``$rl{i}`` (``ln(1 - w)``) for each pattern; see
    :func:`reasoning_params`.
    """
    terms = [f"$rl{i} * regexp_matches({text}, $rp{i})::DOUBLE" for i in range(len(patterns))]
    return f"(1.0 - exp({' + '.join(terms) or '0.0'}))"


def reasoning_params(patterns: Sequence[ReasoningPattern]) -> dict[str, object]:
    params: dict[str, object] = {}
    for i, pattern in enumerate(patterns):
        params[f"rp{i}"] = pattern.pattern
        params[f"rl{i}"] = pattern.log_miss
    return params


_STOPWORDS = {
    "en": r"\b(the|and|is|are|what|how|of|to|you|with|for|this|that)\b",
    "es": r"\b(el|los|las|que|por|una|para|con|del|como|es)\b",
    "fr": r"\b(le|les|des|est|une|pour|avec|dans|qui|que|pas)\b",
    "de": r"\b(der|die|das|und|ist|nicht|mit|ein|eine|wie|auf)\b",
    "pt": r"\b(o|os|as|uma|para|com|não|como|do|da|em)\b",
}
_SCRIPTS = (
    ("ja", r"[\x{3040}-\x{30ff}]"),
    ("ko", r"[\x{ac00}-\x{d7af}]"),
    ("zh", r"[\x{4e00}-\x{9fff}]"),
    ("ru", r"[\x{0400}-\x{04ff}]"),
    ("ar", r"[\x{0600}-\x{06ff}]"),
    ("hi", r"[\x{0900}-\x{097f}]"),
)


def language_expr(raw: str = "prompt", lower: str = "lp") -> str:
    """A cheap language guess: the script, then the Latin language with most stopword hits."""
    script_cases = " ".join(
        f"WHEN regexp_matches({raw}, '{pattern}') THEN '{code}'" for code, pattern in _SCRIPTS
    )
    counts = {
        code: f"len(regexp_extract_all({lower}, '{pattern}'))"
        for code, pattern in _STOPWORDS.items()
    }
    latin = []
    for code, count in counts.items():
        others = [c for k, c in counts.items() if k != code]
        latin.append(f"WHEN {count} > 0 AND {count} >= greatest({', '.join(others)}) THEN '{code}'")
    return f"CASE {script_cases} {' '.join(latin)} ELSE 'und' END"


def insert_prompt_features_sql(patterns: Sequence[ReasoningPattern]) -> str:
    """Features of every row of ``new_prompts``: length, language, reasoning score."""
    return f"""
INSERT INTO prompt_features
SELECT prompt_hash, first_seen, length(prompt)::INTEGER,
       len(regexp_extract_all(prompt, '\\S+'))::INTEGER,
       {language_expr()},
       {reasoning_score_expr(patterns)}
FROM (SELECT prompt_hash, first_seen, prompt, lower(prompt) AS lp FROM new_prompts)
"""


def mask_expr(text: str) -> str:
    """Numbers, quoted spans, inline code and URLs masked: what stays is the wording."""
    masked = f"regexp_replace({text}, 'https?://\\S+|www\\.\\S+', '<url>', 'g')"
    masked = f"regexp_replace({masked}, '`[^`]*`', '<code>', 'g')"
    masked = (
        f"regexp_replace({masked}, "
        "'\"[^\"]{1,300}\"|“[^”]{1,300}”|(^|\\s)''[^'']{1,300}''(\\s|$)', ' <q> ', 'g')"
    )
    masked = f"regexp_replace({masked}, '[0-9]+([.,][0-9]+)*', '0', 'g')"
    masked = f"regexp_replace({masked}, '\\s+', ' ', 'g')"
    return f"trim(regexp_replace({masked}, '^[^a-z0-9<]+|[^a-z0-9>]+$', '', 'g'))"


def insert_prompt_segments_sql() -> str:
    """Cut every new prompt into sentences/lines and hash each one masked and as written."""
    return f"""
INSERT INTO prompt_segments
WITH parts AS (
    SELECT prompt_hash,
           unnest(string_split_regex(prompt, $segment_split)) AS raw,
           generate_subscripts(string_split_regex(prompt, $segment_split), 1) AS pos
    FROM new_prompts
), normal AS (
    SELECT prompt_hash, pos::INTEGER AS pos,
           trim(regexp_replace(lower(raw), '\\s+', ' ', 'g')) AS norm
    FROM parts
), masked AS (
    SELECT prompt_hash, pos, norm, {mask_expr("norm")} AS m FROM normal
)
SELECT prompt_hash, pos, md5(m), md5(norm), length(norm)::INTEGER, left(m, 120)
FROM masked
WHERE length(m) > 0
"""


def prompt_templates_sql() -> str:
    """Each prompt in scope: its template, the hash of its variable part and its question.

    A segment is template text when it recurs in at least ``$min_prompts`` distinct prompts and
    its accounts reuse it with different content (``$per_account`` distinct prompts per account):
    a question many people ask once stays variable. The template is the sequence of template
    segments with ``{}`` for each run of variable ones; the question is the longest variable
    segment of at least ``$question_min`` characters.
    """
    return """
CREATE OR REPLACE TEMP TABLE prompt_template_rows AS
WITH pa AS (
    SELECT DISTINCT account_id, prompt_hash FROM scope
), segs AS (
    SELECT s.* FROM prompt_segments AS s
    SEMI JOIN pa USING (prompt_hash)
    WHERE s.n_chars >= $min_segment
), seg_stats AS (
    SELECT s.seg_hash, count(DISTINCT s.prompt_hash) AS n_prompts,
           count(DISTINCT pa.account_id) AS n_accounts
    FROM segs AS s JOIN pa USING (prompt_hash)
    GROUP BY 1
), boiler AS (
    SELECT seg_hash FROM seg_stats
    WHERE n_prompts >= $min_prompts AND n_prompts >= $per_account * n_accounts
), marked AS (
    SELECT s.prompt_hash, s.pos, s.seg_hash, s.raw_hash, s.n_chars, s.seg_text,
           b.seg_hash IS NOT NULL AS is_template
    FROM segs AS s LEFT JOIN boiler AS b USING (seg_hash)
), runs AS (
    SELECT *, lag(is_template) OVER (PARTITION BY prompt_hash ORDER BY pos) AS prev_template
    FROM marked
)
SELECT prompt_hash,
       bool_or(is_template) AS has_template,
       string_agg(CASE WHEN is_template THEN seg_hash ELSE '{}' END, '|' ORDER BY pos)
           FILTER (WHERE is_template OR prev_template IS NULL OR prev_template) AS tkey,
       string_agg(CASE WHEN is_template THEN seg_text ELSE '{}' END, ' / ' ORDER BY pos)
           FILTER (WHERE is_template OR prev_template IS NULL OR prev_template) AS label,
       string_agg(raw_hash, '|' ORDER BY pos) FILTER (WHERE NOT is_template) AS fkey,
       first(raw_hash ORDER BY n_chars DESC, pos)
           FILTER (WHERE NOT is_template AND n_chars >= $question_min) AS question_hash
FROM runs
GROUP BY prompt_hash
"""


def insert_prompt_templates_sql() -> str:
    """Replace ``prompt_templates`` from ``prompt_template_rows``."""
    return """
INSERT INTO prompt_templates
SELECT prompt_hash,
       CASE WHEN has_template THEN 't' || left(md5(tkey), 12) END,
       md5(coalesce(fkey, '')),
       question_hash
FROM prompt_template_rows
"""


def template_labels_sql() -> str:
    """A readable label per template: its template segments with ``{}`` for the variable parts."""
    return """
CREATE OR REPLACE TEMP TABLE template_labels AS
SELECT 't' || left(md5(tkey), 12) AS cluster_id, left(min(label), 300) AS label
FROM prompt_template_rows WHERE has_template GROUP BY 1
"""


# -- embeddings selection -------------------------------------------------------------------------
def embedding_selection_sql() -> str:
    """The prompts worth embedding, best first, at most ``$budget`` of them.

    First every account's earliest distinct prompt, then the earliest prompt of each template (the
    largest templates first), then each account's next prompts up to ``$per_account``. Ties break
    on the prompt hash, so the selection depends only on the data.
    """
    return """
WITH firsts AS (
    SELECT account_id, prompt_hash, min(ts) AS first_ts FROM scope GROUP BY ALL
), ranked AS (
    SELECT prompt_hash,
           row_number() OVER (PARTITION BY account_id ORDER BY first_ts, prompt_hash) AS r
    FROM firsts
), per_account AS (
    SELECT prompt_hash, CASE WHEN min(r) = 1 THEN 0 ELSE 2 END AS tier, min(r) AS rank_in_tier,
           0 AS size
    FROM ranked WHERE r <= greatest($per_account, 1) GROUP BY prompt_hash
), reps AS (
    SELECT first(t.prompt_hash ORDER BY f.first_seen, t.prompt_hash) AS prompt_hash, 1 AS tier,
           0 AS rank_in_tier, count(*) AS size
    FROM prompt_templates AS t JOIN prompt_features AS f USING (prompt_hash)
    WHERE t.template_id IS NOT NULL
    GROUP BY t.template_id
), candidates AS (
    SELECT prompt_hash, min(tier) AS tier, min(rank_in_tier) AS rank_in_tier, max(size) AS size
    FROM (SELECT * FROM per_account UNION ALL SELECT * FROM reps)
    GROUP BY prompt_hash
)
SELECT c.prompt_hash, f.first_seen
FROM candidates AS c JOIN prompt_features AS f USING (prompt_hash)
ORDER BY c.tier, c.rank_in_tier, c.size DESC, c.prompt_hash
LIMIT $budget
"""


def prompt_texts_sql() -> str:
    """The text of the prompts listed in the temporary table ``wanted(prompt_hash)``."""
    return """
SELECT md5(prompt) AS prompt_hash, any_value(prompt) AS prompt
FROM calls WHERE md5(prompt) IN (SELECT prompt_hash FROM wanted)
GROUP BY 1
"""


def template_cluster_sql() -> str:
    """Prompts outside the embedded selection inherit the majority cluster of their template."""
    return """
INSERT INTO prompt_clusters
WITH votes AS (
    SELECT t.template_id, c.cluster_id, count(*) AS n
    FROM prompt_clusters AS c JOIN prompt_templates AS t USING (prompt_hash)
    WHERE c.model = $model AND t.template_id IS NOT NULL
    GROUP BY ALL
), winner AS (
    SELECT template_id, first(cluster_id ORDER BY n DESC, cluster_id) AS cluster_id
    FROM votes GROUP BY 1
)
SELECT t.prompt_hash, $model, w.cluster_id, 0.0
FROM prompt_templates AS t JOIN winner AS w USING (template_id)
ANTI JOIN (SELECT prompt_hash FROM prompt_clusters WHERE model = $model) AS done USING (prompt_hash)
"""


# -- per-call view --------------------------------------------------------------------------------
def enriched_sql() -> str:
    """One row per call in scope with its content features, template, question and cluster."""
    return """
CREATE OR REPLACE TEMP TABLE enriched AS
WITH q AS (
    SELECT t.question_hash, count(DISTINCT s.account_id) AS q_accounts
    FROM scope AS s JOIN prompt_templates AS t USING (prompt_hash)
    WHERE t.question_hash IS NOT NULL
    GROUP BY 1
)
SELECT s.call_id, s.account_id, s.ts, s.prompt_hash, s.prompt_tokens, s.completion_tokens,
       coalesce(f.reasoning_score, 0.0) AS reasoning_score,
       coalesce(f.reasoning_score, 0.0) >= $reasoning_threshold AS reasoning,
       t.template_id, t.question_hash, coalesce(q.q_accounts, 0) AS q_accounts,
       c.cluster_id
FROM scope AS s
LEFT JOIN prompt_features AS f USING (prompt_hash)
LEFT JOIN prompt_templates AS t USING (prompt_hash)
LEFT JOIN q USING (question_hash)
LEFT JOIN (SELECT prompt_hash, cluster_id FROM prompt_clusters WHERE model = $model) AS c
    USING (prompt_hash)
"""


# -- query clusters -------------------------------------------------------------------------------
def cluster_stats_sql(kind: str) -> str:
    """Statistics of every template (``kind='template'``) or embedding cluster.

    ``suspicion`` = reasoning rate x coverage x (1 - question overlap) x (1 - concentration): a
    cluster where many accounts each ask different reasoning-eliciting questions scores high; one
    popular question, or one account's workload, does not.
    """
    key = CLUSTER_KEYS[_allowed(kind, tuple(CLUSTER_KEYS), "cluster kind")]
    labels = (
        "template_labels"
        if kind == "template"
        else "(SELECT NULL::VARCHAR AS cluster_id, NULL::VARCHAR AS label WHERE false)"
    )
    return f"""
INSERT INTO clusters
WITH c AS (
    SELECT {key} AS cid, account_id, prompt_hash, question_hash, q_accounts, reasoning
    FROM enriched WHERE {key} IS NOT NULL
), per_account AS (
    SELECT cid, account_id, count(*) AS n FROM c GROUP BY ALL
), hhi AS (
    SELECT cid, sum(power(n / tot, 2)) AS concentration
    FROM (SELECT cid, n, sum(n) OVER (PARTITION BY cid) AS tot FROM per_account)
    GROUP BY cid
), stats AS (
    SELECT cid, count(*) AS n_calls, count(DISTINCT account_id) AS n_accounts,
           count(DISTINCT prompt_hash) AS n_prompts, count(DISTINCT question_hash) AS n_questions,
           count(DISTINCT question_hash) / count(*) AS coverage,
           avg((q_accounts >= 2)::DOUBLE) AS question_overlap,
           avg(reasoning::DOUBLE) AS reasoning_rate
    FROM c GROUP BY cid
)
SELECT s.cid, '{kind}', l.label, s.n_calls, s.n_accounts, s.n_prompts, s.n_questions,
       s.coverage, s.question_overlap, s.reasoning_rate, h.concentration,
       s.reasoning_rate * s.coverage * (1 - s.question_overlap) * (1 - h.concentration)
FROM stats AS s JOIN hhi AS h USING (cid)
LEFT JOIN {labels} AS l ON l.cluster_id = s.cid
"""


# -- per-account behaviour ------------------------------------------------------------------------
def account_features_sql() -> str:
    """Volume, diurnal shape, regularity, token ratio and content shares of every account."""
    return """
INSERT INTO account_features
WITH e AS (
    SELECT e.*, lag(e.ts) OVER (PARTITION BY e.account_id ORDER BY e.ts) AS prev_ts,
           cl.suspicion AS cluster_suspicion
    FROM enriched AS e
    LEFT JOIN (SELECT cluster_id, suspicion FROM clusters WHERE kind = 'embedding') AS cl
        USING (cluster_id)
), hours AS (
    SELECT account_id, hour(ts) AS h, count(*) AS n FROM e GROUP BY ALL
), hour_shape AS (
    SELECT account_id, count(*) AS active_hours,
           -sum((n / tot) * ln(n / tot)) / ln(24) AS hour_entropy
    FROM (SELECT account_id, h, n, sum(n) OVER (PARTITION BY account_id) AS tot FROM hours)
    GROUP BY account_id
), days AS (
    SELECT account_id, date_trunc('day', ts) AS d, count(*) AS n FROM e GROUP BY ALL
), day_stats AS (
    SELECT account_id, count(*) AS active_days,
           min(d) FILTER (WHERE n >= $heavy_calls) AS first_heavy_day
    FROM days GROUP BY account_id
), base AS (
    SELECT account_id, count(*) AS n_calls,
           stddev_pop(epoch(ts) - epoch(prev_ts)) / nullif(avg(epoch(ts) - epoch(prev_ts)), 0)
               AS interarrival_cv,
           sum(completion_tokens) / nullif(sum(prompt_tokens), 0) AS token_ratio,
           avg(reasoning::DOUBLE) AS reasoning_rate,
           avg((template_id IS NOT NULL)::DOUBLE) AS templated_share,
           avg((coalesce(cluster_suspicion, 0) >= $suspicious_cluster)::DOUBLE)
               AS suspicious_cluster_share,
           avg((q_accounts >= 2)::DOUBLE) AS question_dup_share,
           count(DISTINCT prompt_hash) / count(*) AS distinct_prompt_ratio
    FROM e GROUP BY account_id
)
SELECT b.account_id, a.created_at, b.n_calls, d.active_days, b.n_calls / d.active_days,
       h.hour_entropy, h.active_hours, b.interarrival_cv, b.token_ratio, b.reasoning_rate,
       b.templated_share, b.suspicious_cluster_share, b.question_dup_share,
       b.distinct_prompt_ratio,
       (epoch(d.first_heavy_day) - epoch(a.created_at)) / 86400.0,
       NULL, NULL, NULL
FROM base AS b
JOIN hour_shape AS h USING (account_id)
JOIN day_stats AS d USING (account_id)
LEFT JOIN accounts AS a USING (account_id)
"""


def prada_sample_sql(bounded: bool) -> str:
    """Each account's first ``$max_calls`` prompts in time order (the baseline's input)."""
    where = "WHERE ts < $until" if bounded else ""
    return f"""
SELECT account_id, prompt FROM (
    SELECT account_id, prompt,
           row_number() OVER (PARTITION BY account_id ORDER BY ts, call_id) AS r
    FROM calls {where}
) WHERE r <= $max_calls
ORDER BY account_id, r
"""


# -- the account graph ----------------------------------------------------------------------------
def account_keys_sql() -> str:
    """(account, kind, key) for everything an account could share with another.

    Networks come from ``ip_nets(ip, net)``, which the caller fills (/24 for IPv4, /48 for IPv6);
    sign-up waves from ``wave_keys(account_id, key)``.
    """
    return """
CREATE OR REPLACE TEMP TABLE account_keys AS
WITH active AS (SELECT account_id FROM scope_accounts)
SELECT DISTINCT account_id, kind, key FROM (
    SELECT a.account_id, 'payment' AS kind, a.payment_fingerprint AS key
    FROM accounts AS a SEMI JOIN active USING (account_id)
    WHERE a.payment_fingerprint IS NOT NULL AND a.payment_fingerprint <> ''
    UNION ALL
    SELECT a.account_id, 'signup_net', n.net
    FROM accounts AS a SEMI JOIN active USING (account_id) JOIN ip_nets AS n ON n.ip = a.signup_ip
    UNION ALL
    SELECT s.account_id, 'client_net', n.net FROM scope AS s JOIN ip_nets AS n ON n.ip = s.client_ip
    UNION ALL
    SELECT account_id, 'user_agent', user_agent FROM scope
    WHERE user_agent IS NOT NULL AND user_agent <> ''
    UNION ALL
    SELECT account_id, 'template', template_id FROM enriched WHERE template_id IS NOT NULL
    UNION ALL
    SELECT account_id, 'cluster', cluster_id FROM enriched WHERE cluster_id IS NOT NULL
    UNION ALL
    SELECT account_id, 'signup_wave', key FROM wave_keys
)
"""


def wave_keys_sql() -> str:
    """Accounts created in a sign-up wave: a window with ``$wave_ratio`` times the typical count.

    Windows of ``$window_minutes`` are laid twice, the second shifted by half a window, so a wave
    across a boundary is still one window.
    """
    return """
CREATE OR REPLACE TEMP TABLE wave_keys AS
WITH active AS (SELECT account_id FROM scope_accounts),
created AS (
    SELECT a.account_id, epoch(a.created_at) AS t
    FROM accounts AS a SEMI JOIN active USING (account_id)
), windows AS (
    SELECT account_id, 'a' || floor(t / ($window_minutes * 60))::BIGINT AS w FROM created
    UNION ALL
    SELECT account_id, 'b' || floor(t / ($window_minutes * 60) + 0.5)::BIGINT FROM created
), counts AS (
    SELECT w, count(*) AS n FROM windows GROUP BY w
), typical AS (
    SELECT greatest(median(n), 1) AS m FROM counts
)
SELECT w.account_id, w.w AS key
FROM windows AS w JOIN counts AS c USING (w), typical
WHERE c.n >= $wave_min AND c.n >= $wave_ratio * typical.m
"""


def edge_weight_case(kinds: Sequence[str] = EDGE_KINDS) -> str:
    """``CASE kind WHEN 'payment' THEN $w_payment ...``; kinds from the allow-list only."""
    whens = " ".join(f"WHEN '{_allowed(k, EDGE_KINDS, 'edge kind')}' THEN $w_{k}" for k in kinds)
    return f"CASE kind {whens} ELSE 0.0 END"


def graph_edges_sql() -> str:
    """Edges between accounts that share a key, weighted by how rare the key is.

    A key shared by ``n`` of the ``$n_accounts`` accounts has rarity ``ln(N/n) / ln(N/2)``; keys
    shared by more than ``$max_group`` accounts link no one. Inside one group each account links to
    its next ``$neighbours`` members on a circle ordered by a hash (a complete graph when the group
    is small), so a large group stays connected with a number of edges linear in its size. Per pair
    and kind the rarities add up to at most 1, times the kind's weight.
    """
    return f"""
CREATE OR REPLACE TEMP TABLE raw_edges AS
WITH sizes AS (
    SELECT kind, key, count(*) AS n FROM account_keys GROUP BY ALL
    HAVING count(*) >= 2 AND count(*) <= $max_group
), ranked AS (
    SELECT k.account_id, k.kind, k.key, s.n,
           row_number() OVER (PARTITION BY k.kind, k.key ORDER BY md5(k.account_id || k.key)) - 1
               AS r
    FROM account_keys AS k JOIN sizes AS s USING (kind, key)
), pairs AS (
    SELECT DISTINCT least(a.account_id, b.account_id) AS src,
           greatest(a.account_id, b.account_id) AS dst, a.kind, a.key,
           greatest(0.0, least(1.0, ln($n_accounts / a.n) / ln(greatest($n_accounts, 3) / 2.0)))
               AS rarity
    FROM ranked AS a
    JOIN range(1, $neighbours + 1) AS d(step) ON d.step < a.n
    JOIN ranked AS b ON b.kind = a.kind AND b.key = a.key AND b.r = (a.r + d.step) % a.n
), per_kind AS (
    SELECT src, dst, kind, least(1.0, sum(rarity)) * any_value({edge_weight_case()}) AS contribution
    FROM pairs GROUP BY src, dst, kind
)
SELECT src, dst, kind, contribution FROM per_kind WHERE contribution > 0
"""


def sync_edges_sql() -> str:
    """Synchronised activity between already-linked accounts: Jaccard of active time buckets."""
    return """
INSERT INTO raw_edges
WITH linked AS (SELECT DISTINCT src, dst FROM raw_edges),
active AS (
    SELECT DISTINCT account_id, floor(epoch(ts) / ($sync_minutes * 60))::BIGINT AS b FROM scope
), sizes AS (
    SELECT account_id, count(*) AS n FROM active GROUP BY 1
), common AS (
    SELECT l.src, l.dst, count(*) AS k
    FROM linked AS l
    JOIN active AS a ON a.account_id = l.src
    JOIN active AS b ON b.account_id = l.dst AND b.b = a.b
    GROUP BY ALL
)
SELECT c.src, c.dst, 'synchronised', $w_synchronised * c.k / (sa.n + sb.n - c.k)
FROM common AS c
JOIN sizes AS sa ON sa.account_id = c.src
JOIN sizes AS sb ON sb.account_id = c.dst
WHERE c.k >= 2
"""


def collapse_edges_sql() -> str:
    """One row per linked pair: the total weight and each kind's contribution (JSON)."""
    return """
INSERT INTO graph_edges
SELECT src, dst, sum(contribution) AS weight,
       json_group_object(kind, round(contribution, 4)) AS contributions
FROM raw_edges GROUP BY src, dst
"""


# -- rings ----------------------------------------------------------------------------------------
def _own_cte(name: str, key: str) -> str:
    """CTE ``name``: the (ring, key) pairs where the template/cluster ``key`` is ring-made.

    Ring-made: used by two or more members of the ring, and ``$own_share`` of all its accounts are
    members of candidate rings (one ring or several operations reusing the same wording), not the
    unlinked population (a phrase many independent people use).
    """
    key = _allowed(key, tuple(CLUSTER_KEYS.values()), "cluster key")
    return f"""{name}_total AS (
    SELECT e.{key}, count(DISTINCT e.account_id) AS tot,
           count(DISTINCT m.account_id) AS in_rings
    FROM enriched AS e LEFT JOIN members AS m USING (account_id)
    WHERE e.{key} IS NOT NULL GROUP BY 1
), {name} AS (
    SELECT c.ring_id, c.{key}
    FROM c JOIN {name}_total AS t USING ({key})
    GROUP BY c.ring_id, c.{key}, t.tot, t.in_rings
    HAVING count(DISTINCT c.account_id) >= 2 AND t.in_rings >= $own_share * t.tot
)"""


def ring_signals_sql() -> str:
    """Per candidate ring (``members``): its content signals, each in [0, 1].

    * ``reasoning``: member calls that elicit reasoning;
    * ``templates`` / ``clusters``: member calls in a ring-made template (cluster): used by two or
      more members, with ``$own_share`` of its accounts in candidate rings (see ``_own_cte``);
    * ``coverage``: among the calls of interest (reasoning or own template), the share whose
      question is not asked by many members (``$popular_share`` of the ring, at least 3): a ring
      spreads a problem bank across its accounts, a class or a shared benchmark repeats it.
    """
    return f"""
WITH c AS (
    SELECT e.*, m.ring_id FROM enriched AS e JOIN members AS m USING (account_id)
), {_own_cte("own_tpl", "template_id")}, {_own_cte("own_cl", "cluster_id")}, sizes AS (
    SELECT ring_id, count(*) AS size FROM members GROUP BY 1
), q AS (
    SELECT ring_id, question_hash, count(DISTINCT account_id) AS k
    FROM c WHERE question_hash IS NOT NULL GROUP BY ALL
), marked AS (
    SELECT c.ring_id, c.account_id, c.reasoning,
           ot.template_id IS NOT NULL AS own_template,
           oc.cluster_id IS NOT NULL AS own_cluster,
           q.k >= greatest(3, $popular_share * s.size) AS popular_question
    FROM c
    JOIN sizes AS s USING (ring_id)
    LEFT JOIN own_tpl AS ot ON ot.ring_id = c.ring_id AND ot.template_id = c.template_id
    LEFT JOIN own_cl AS oc ON oc.ring_id = c.ring_id AND oc.cluster_id = c.cluster_id
    LEFT JOIN q ON q.ring_id = c.ring_id AND q.question_hash = c.question_hash
)
SELECT ring_id, account_id, count(*) AS n_calls,
       sum(reasoning::INT) AS n_reasoning,
       sum(own_template::INT) AS n_own_template,
       sum(own_cluster::INT) AS n_own_cluster,
       sum((reasoning OR own_template)::INT) AS n_interest,
       sum(((reasoning OR own_template) AND popular_question IS NOT DISTINCT FROM true)::INT)
           AS n_popular,
       sum((reasoning OR own_template OR own_cluster)::INT) AS n_fit
FROM marked
GROUP BY ring_id, account_id
ORDER BY ring_id, account_id
"""


def ring_templates_sql() -> str:
    """The templates each ring uses most, with their text, for the evidence."""
    return """
WITH c AS (
    SELECT e.template_id, m.ring_id, e.account_id
    FROM enriched AS e JOIN members AS m USING (account_id)
    WHERE e.template_id IS NOT NULL
), counted AS (
    SELECT ring_id, template_id, count(*) AS n_calls, count(DISTINCT account_id) AS n_accounts
    FROM c GROUP BY ring_id, template_id
), top AS (
    SELECT *, row_number() OVER (PARTITION BY ring_id ORDER BY n_calls DESC, template_id) AS r
    FROM counted
)
SELECT t.ring_id, t.template_id, t.n_calls, t.n_accounts, cl.n_accounts AS all_accounts, cl.label
FROM top AS t LEFT JOIN clusters AS cl ON cl.cluster_id = t.template_id AND cl.kind = 'template'
WHERE t.r <= 3
ORDER BY t.ring_id, t.r
"""
