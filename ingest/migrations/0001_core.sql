-- The core warehouse: calls and accounts in the contracts of ARCHITECTURE.md, the ingest ledger
-- and the quarantine of rows that broke a contract. call_id uniqueness is enforced by the single
-- writer (an anti-join at load time), not by an index: an index costs 4x load speed here.

CREATE SEQUENCE ingest_batch_seq START 1;

CREATE TABLE ingest_ledger (
    batch_id          BIGINT PRIMARY KEY,
    kind              VARCHAR NOT NULL,          -- 'calls' | 'accounts'
    source_path       VARCHAR NOT NULL,
    source_format     VARCHAR NOT NULL,          -- 'parquet' | 'jsonl' | 'csv'
    content_sha256    VARCHAR NOT NULL,
    size_bytes        BIGINT NOT NULL,
    rows_read         BIGINT NOT NULL,
    rows_loaded       BIGINT NOT NULL,          -- new rows, plus updated accounts
    rows_updated      BIGINT NOT NULL,          -- accounts that replaced a stored row
    rows_duplicate    BIGINT NOT NULL,          -- calls already stored, accounts unchanged
    rows_quarantined  BIGINT NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX ingest_ledger_sha ON ingest_ledger (kind, content_sha256);

CREATE TABLE calls (
    call_id            VARCHAR NOT NULL,
    ts                 TIMESTAMPTZ NOT NULL,
    account_id         VARCHAR NOT NULL,
    api_key_id         VARCHAR,
    client_ip          VARCHAR,
    user_agent         VARCHAR,
    endpoint           VARCHAR,
    model              VARCHAR,
    prompt             VARCHAR NOT NULL,
    system_prompt      VARCHAR,
    response           VARCHAR,
    prompt_tokens      BIGINT,
    completion_tokens  BIGINT,
    status_code        INTEGER,
    latency_ms         DOUBLE,
    extra              JSON,                     -- columns outside the contract, kept as given
    batch_id           BIGINT NOT NULL           -- ingest_ledger.batch_id that loaded the row
);

CREATE TABLE accounts (
    account_id           VARCHAR PRIMARY KEY,
    created_at           TIMESTAMPTZ NOT NULL,
    email_domain         VARCHAR,
    payment_fingerprint  VARCHAR,
    signup_ip            VARCHAR,
    country              VARCHAR,
    plan                 VARCHAR,
    org_id               VARCHAR,
    extra                JSON,
    batch_id             BIGINT NOT NULL
);

CREATE TABLE quarantine (
    batch_id     BIGINT NOT NULL,
    kind         VARCHAR NOT NULL,
    source_path  VARCHAR NOT NULL,
    line         BIGINT,                         -- 1-based line (JSONL, CSV) or row (Parquet)
    reason       VARCHAR NOT NULL,
    raw          VARCHAR                         -- the row as JSON text, for a person to inspect
);
