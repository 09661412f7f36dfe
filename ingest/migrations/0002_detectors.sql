-- The detectors' tables. Per-prompt work (features, segments, embeddings, cluster assignment) is
-- cached by prompt hash (md5 of the prompt text) so a later run only processes new prompts; the
-- set-based results (templates, clusters, account features, graph, rings, flags) are rebuilt by
-- every run from all calls, which is what makes an incremental run agree with a full one.

-- One row per distinct prompt: the cheap content features.
CREATE TABLE prompt_features (
    prompt_hash      VARCHAR NOT NULL,
    first_seen       TIMESTAMPTZ NOT NULL,
    n_chars          INTEGER NOT NULL,
    n_words          INTEGER NOT NULL,
    lang             VARCHAR NOT NULL,          -- ISO 639-1 guess, 'und' when unknown
    reasoning_score  DOUBLE NOT NULL            -- reasoning-elicitation score in [0, 1]
);

-- The prompt cut into segments (lines and sentences); seg_hash is the masked form (numbers, quoted
-- spans, URLs masked), raw_hash the unmasked text. Templates are derived from these per run.
CREATE TABLE prompt_segments (
    prompt_hash  VARCHAR NOT NULL,
    pos          INTEGER NOT NULL,
    seg_hash     VARCHAR NOT NULL,
    raw_hash     VARCHAR NOT NULL,
    n_chars      INTEGER NOT NULL,
    seg_text     VARCHAR NOT NULL               -- the masked text, truncated, for reviewers
);

-- Per run: each prompt's template (NULL for free text), its variable part and its question.
CREATE TABLE prompt_templates (
    prompt_hash    VARCHAR NOT NULL,
    template_id    VARCHAR,
    fill_hash      VARCHAR,
    question_hash  VARCHAR
);

-- The embeddings cache, by prompt hash and model.
CREATE TABLE embeddings (
    prompt_hash  VARCHAR NOT NULL,
    model        VARCHAR NOT NULL,
    vector       FLOAT[] NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- Embedding clusters: a leader prompt per cluster, assigned in first-seen order, so new prompts join
-- existing clusters and a full run over the same data makes the same clusters.
CREATE TABLE embedding_leaders (
    cluster_id   VARCHAR NOT NULL,
    model        VARCHAR NOT NULL,
    prompt_hash  VARCHAR NOT NULL,
    seq          BIGINT NOT NULL
);
CREATE TABLE prompt_clusters (
    prompt_hash  VARCHAR NOT NULL,
    model        VARCHAR NOT NULL,
    cluster_id   VARCHAR NOT NULL,
    similarity   DOUBLE NOT NULL
);

-- Per run: query clusters (templates and embedding clusters) with their statistics.
CREATE TABLE clusters (
    cluster_id        VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,         -- 'template' | 'embedding'
    label             VARCHAR,
    n_calls           BIGINT NOT NULL,
    n_accounts        BIGINT NOT NULL,
    n_prompts         BIGINT NOT NULL,
    n_questions       BIGINT NOT NULL,
    coverage          DOUBLE NOT NULL,          -- distinct questions / calls
    question_overlap  DOUBLE NOT NULL,          -- share of calls whose question other accounts ask
    reasoning_rate    DOUBLE NOT NULL,
    concentration     DOUBLE NOT NULL,          -- Herfindahl index of the accounts' call shares
    suspicion         DOUBLE NOT NULL           -- in [0, 1]
);

-- Per run: per-account behaviour.
CREATE TABLE account_features (
    account_id               VARCHAR NOT NULL,
    created_at               TIMESTAMPTZ,
    n_calls                  BIGINT NOT NULL,
    active_days              BIGINT NOT NULL,
    calls_per_active_day     DOUBLE NOT NULL,
    hour_entropy             DOUBLE NOT NULL,   -- diurnal shape, 1 = flat over the day
    active_hours             BIGINT NOT NULL,   -- distinct hours of day with activity (0..24)
    interarrival_cv          DOUBLE,            -- low = machine-regular
    token_ratio              DOUBLE,            -- completion / prompt tokens
    reasoning_rate           DOUBLE NOT NULL,
    templated_share          DOUBLE NOT NULL,
    suspicious_cluster_share DOUBLE NOT NULL,
    question_dup_share       DOUBLE NOT NULL,
    distinct_prompt_ratio    DOUBLE NOT NULL,
    days_to_heavy_use        DOUBLE,            -- account age at its first heavy day
    behaviour_score          DOUBLE,
    prada_score              DOUBLE,
    prada_flagged            BOOLEAN
);

-- Per run: the account graph, one row per linked pair with each signal's contribution.
CREATE TABLE graph_edges (
    src            VARCHAR NOT NULL,
    dst            VARCHAR NOT NULL,
    weight         DOUBLE NOT NULL,
    contributions  JSON NOT NULL
);

-- Every detection run.
CREATE TABLE detection_runs (
    run_id          BIGINT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    mode            VARCHAR NOT NULL,           -- 'full' | 'incremental'
    since           TIMESTAMPTZ,
    policy_sha256   VARCHAR NOT NULL,
    model           VARCHAR,
    device          VARCHAR,
    embed_budget    BIGINT,
    n_calls         BIGINT,
    n_accounts      BIGINT,
    n_new_prompts   BIGINT,
    n_embedded      BIGINT,
    n_rings         BIGINT,
    n_flagged       BIGINT,
    timings         JSON
);

-- Candidate rings of a run, with their score and evidence.
CREATE TABLE rings (
    run_id    BIGINT NOT NULL,
    ring_id   VARCHAR NOT NULL,
    size      BIGINT NOT NULL,
    score     DOUBLE NOT NULL,
    flagged   BOOLEAN NOT NULL,
    evidence  JSON NOT NULL
);

-- Every account's verdict in a run, with its evidence.
CREATE TABLE flags (
    run_id          BIGINT NOT NULL,
    account_id      VARCHAR NOT NULL,
    ring_id         VARCHAR,
    score           DOUBLE NOT NULL,
    flagged         BOOLEAN NOT NULL,
    baseline_score  DOUBLE,
    baseline_flagged BOOLEAN,
    reasons         VARCHAR[] NOT NULL,
    evidence        JSON NOT NULL
);
