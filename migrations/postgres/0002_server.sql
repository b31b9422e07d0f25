-- The server: workspaces and their API keys, components visible to a workspace, work
-- pools, deployments and their versions, tag concurrency limits, workspace variables
-- and secrets, and the columns that tie a flow run to its workspace and deployment.

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE workspaces (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    created  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    hash          TEXT NOT NULL,
    name          TEXT,
    created       TEXT NOT NULL,
    revoked       TEXT
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

CREATE TABLE workspace_components (
    workspace_id  TEXT NOT NULL,
    digest        TEXT NOT NULL,
    created       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, digest)
);

CREATE TABLE work_pools (
    workspace_id       TEXT NOT NULL,
    name               TEXT NOT NULL,
    concurrency_limit  BIGINT,
    paused             BIGINT NOT NULL DEFAULT 0,
    created            TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE deployments (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL,
    name                TEXT NOT NULL,
    component_digest    TEXT NOT NULL,
    flow                TEXT NOT NULL,
    parameters          TEXT NOT NULL,
    tags                TEXT NOT NULL,
    description         TEXT,
    version             TEXT,
    pool                TEXT NOT NULL,
    concurrency_limit   BIGINT,
    memory_mb           BIGINT,
    timeout_seconds     DOUBLE PRECISION,
    allowed_hosts       TEXT NOT NULL,
    paused              BIGINT NOT NULL DEFAULT 0,
    webhook_token_hash  TEXT UNIQUE,
    webhook_secret      TEXT,
    created             TEXT NOT NULL,
    updated             TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX deployments_component ON deployments (component_digest);

CREATE TABLE deployment_versions (
    deployment_id     TEXT NOT NULL,
    version_no        BIGINT NOT NULL,
    component_digest  TEXT NOT NULL,
    flow              TEXT NOT NULL,
    created           TEXT NOT NULL,
    PRIMARY KEY (deployment_id, version_no)
);

CREATE TABLE concurrency_limits (
    workspace_id  TEXT NOT NULL,
    tag           TEXT NOT NULL,
    max_runs      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, tag)
);

CREATE TABLE workspace_variables (
    workspace_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    value         TEXT NOT NULL,
    updated       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE secrets (
    workspace_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    ciphertext    TEXT NOT NULL,
    updated       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

ALTER TABLE flow_runs ADD COLUMN workspace_id TEXT;
ALTER TABLE flow_runs ADD COLUMN deployment_id TEXT;
ALTER TABLE flow_runs ADD COLUMN idempotency_key TEXT;
ALTER TABLE flow_runs ADD COLUMN expected_start TEXT;
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (deployment_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX flow_runs_workspace ON flow_runs (workspace_id, id);
CREATE INDEX flow_runs_deployment ON flow_runs (deployment_id, id);
CREATE INDEX flow_runs_state ON flow_runs (state_type);
