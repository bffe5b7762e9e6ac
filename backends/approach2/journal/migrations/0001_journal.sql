-- The operation journal: one row per (project, workspace, idempotency key).
-- A row is inserted in state 'started' before the operation runs and settled
-- (succeeded, failed, or unknown after reconciliation) once its outcome is known.
CREATE TABLE op_journal (
    id             bigserial   PRIMARY KEY,
    project        text        NOT NULL,
    workspace      text        NOT NULL,
    idem_key       text        NOT NULL,
    op             text        NOT NULL,
    fingerprint    bytea       NOT NULL,
    state          text        NOT NULL DEFAULT 'started'
                   CHECK (state IN ('started', 'succeeded', 'failed', 'unknown')),
    fence          bigint      NOT NULL DEFAULT 0,
    prepared       jsonb,
    result         jsonb,
    error_category text        NOT NULL DEFAULT '',
    error_message  text        NOT NULL DEFAULT '',
    reconciled     boolean     NOT NULL DEFAULT false,
    attempts       integer     NOT NULL DEFAULT 1,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    CONSTRAINT op_journal_key UNIQUE (project, workspace, idem_key),
    CONSTRAINT op_journal_settled CHECK ((state = 'started') = (settled_at IS NULL))
);

-- Crash reconciliation scans only the (few) entries still started.
CREATE INDEX op_journal_unsettled ON op_journal (updated_at) WHERE state = 'started';

-- The workspace lock audit trail (lock.Auditor).
CREATE TABLE lock_audit (
    id     bigserial   PRIMARY KEY,
    key    text        NOT NULL,
    holder text        NOT NULL,
    fence  bigint      NOT NULL,
    event  text        NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX lock_audit_key ON lock_audit (key, id);
