-- The review console's tables: users and their sessions, the append-only audit log of decisions,
-- claims on queue items and dismissals (which the detectors may read to avoid re-flagging an
-- account for evidence a reviewer already dismissed).

CREATE TABLE console_users (
    username       VARCHAR PRIMARY KEY,
    role           VARCHAR NOT NULL,          -- 'viewer' | 'reviewer' | 'admin'
    password_hash  VARCHAR NOT NULL,          -- argon2id, never the password
    created_at     TIMESTAMPTZ NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT false
);

-- A session cookie's token is stored as its SHA-256 only; csrf_token is sent back with every
-- state-changing request.
CREATE TABLE console_sessions (
    token_sha256  VARCHAR PRIMARY KEY,
    username      VARCHAR NOT NULL,
    csrf_token    VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);

-- The audit log. Rows are only ever inserted; each row carries the hash of the row before it, so
-- an edit or deletion breaks the chain (`dashboards.decisions.verify_audit_log`).
CREATE SEQUENCE decision_seq START 1;
CREATE TABLE decisions (
    decision_id   BIGINT PRIMARY KEY,
    decided_at    TIMESTAMPTZ NOT NULL,
    actor         VARCHAR NOT NULL,           -- the reviewer's username
    actor_role    VARCHAR NOT NULL,
    target_kind   VARCHAR NOT NULL,           -- 'ring' | 'account'
    target_id     VARCHAR NOT NULL,
    action        VARCHAR NOT NULL,           -- 'suspend' | 'restrict' | 'throttle' | 'dismiss'
    reason        VARCHAR NOT NULL,
    accounts      VARCHAR[] NOT NULL,         -- the accounts the decision applied to
    run_id        BIGINT,                     -- the detection run the reviewer looked at
    evidence      JSON NOT NULL,              -- the evidence snapshot at decision time
    published     VARCHAR NOT NULL,           -- the enforcement state published to the gateways
    prev_sha256   VARCHAR NOT NULL,
    row_sha256    VARCHAR NOT NULL
);

-- Who is working on a queue item; a claim by someone else refuses a second claim.
CREATE TABLE claims (
    target_kind  VARCHAR NOT NULL,
    target_id    VARCHAR NOT NULL,
    username     VARCHAR NOT NULL,
    claimed_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (target_kind, target_id)
);

-- Accounts a reviewer dismissed, with the evidence key they were dismissed for: an account whose
-- current evidence has the same key (and a score not above `score` + margin) is not re-flagged.
CREATE TABLE dismissals (
    account_id    VARCHAR NOT NULL,
    evidence_key  VARCHAR NOT NULL,
    score         DOUBLE NOT NULL,
    decision_id   BIGINT NOT NULL,
    dismissed_at  TIMESTAMPTZ NOT NULL
);
