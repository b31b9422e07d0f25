-- Transactions of flow runs (Prefect's `with transaction()`): one row per transaction an
-- execution of a run began, at its call position, and how it ended. A run executed again
-- (after a crash, a suspend or a flow retry) reads them back: a committed transaction is
-- not committed again, an active one carries on, a rolled-back one runs its calls anew.

CREATE TABLE transactions (
    id            TEXT PRIMARY KEY,
    flow_run_id   TEXT NOT NULL,
    position      BIGINT NOT NULL,
    -- The transaction it began inside, if any.
    parent_id     TEXT,
    key           TEXT,
    -- 'read-committed' or 'serializable'.
    isolation     TEXT NOT NULL,
    -- 'eager', 'lazy' or 'off'.
    commit_mode   TEXT NOT NULL,
    -- 'active', 'committed' or 'rolled-back'.
    state         TEXT NOT NULL,
    created       TEXT NOT NULL,
    ended         TEXT
);
CREATE INDEX transactions_flow_run ON transactions (flow_run_id, position);

-- Keys of committed transactions (Prefect's transaction records): a later transaction
-- with the same key in the workspace begins committed.
CREATE TABLE transaction_records (
    workspace_id    TEXT NOT NULL,
    key             TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    flow_run_id     TEXT NOT NULL,
    committed       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

-- The transaction a task run belongs to.
ALTER TABLE task_runs ADD COLUMN transaction_id TEXT;
