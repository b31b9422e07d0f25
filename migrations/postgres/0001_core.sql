-- Core orchestration tables: components, flow and task runs with their state history,
-- logs, artifacts, the task cache and variables. Timestamps are UTC RFC 3339 text with
-- microseconds, so they sort as text.

CREATE TABLE components (
    digest      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    manifest    TEXT NOT NULL,
    created     TEXT NOT NULL
);

CREATE TABLE flow_runs (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    flow_name           TEXT NOT NULL,
    component_digest    TEXT NOT NULL,
    parameters          TEXT NOT NULL,
    tags                TEXT NOT NULL,
    parent_flow_run_id  TEXT,
    parent_position     BIGINT,
    state_type          TEXT NOT NULL,
    state_name          TEXT NOT NULL,
    state_message       TEXT,
    state_timestamp     TEXT NOT NULL,
    run_count           BIGINT NOT NULL DEFAULT 0,
    result              TEXT,
    created             TEXT NOT NULL,
    start_time          TEXT,
    end_time            TEXT
);
CREATE INDEX flow_runs_parent ON flow_runs (parent_flow_run_id, parent_position);
CREATE INDEX flow_runs_created ON flow_runs (created);

CREATE TABLE task_runs (
    id               TEXT PRIMARY KEY,
    flow_run_id      TEXT NOT NULL,
    -- The call's stable position in its flow run; NULL for tasks called from tasks.
    position         BIGINT,
    task_name        TEXT NOT NULL,
    name             TEXT NOT NULL,
    input_hash       TEXT NOT NULL,
    cache_key        TEXT,
    tags             TEXT NOT NULL,
    state_type       TEXT NOT NULL,
    state_name       TEXT NOT NULL,
    state_message    TEXT,
    state_timestamp  TEXT NOT NULL,
    run_count        BIGINT NOT NULL DEFAULT 0,
    result           TEXT,
    created          TEXT NOT NULL,
    start_time       TEXT,
    end_time         TEXT
);
CREATE INDEX task_runs_flow_run ON task_runs (flow_run_id, position);

-- Every state a run went through, in order.
CREATE TABLE run_states (
    seq        BIGSERIAL PRIMARY KEY,
    run_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    name       TEXT NOT NULL,
    message    TEXT,
    timestamp  TEXT NOT NULL
);
CREATE INDEX run_states_run ON run_states (run_id, seq);

CREATE TABLE logs (
    seq          BIGSERIAL PRIMARY KEY,
    flow_run_id  TEXT NOT NULL,
    task_run_id  TEXT,
    level        TEXT NOT NULL,
    message      TEXT NOT NULL,
    timestamp    TEXT NOT NULL
);
CREATE INDEX logs_flow_run ON logs (flow_run_id, seq);

CREATE TABLE artifacts (
    id           TEXT PRIMARY KEY,
    key          TEXT,
    type         TEXT NOT NULL,
    description  TEXT,
    data         TEXT NOT NULL,
    flow_run_id  TEXT NOT NULL,
    task_run_id  TEXT,
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL
);
CREATE INDEX artifacts_key ON artifacts (key, created);
CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id);

CREATE TABLE cache_entries (
    key          TEXT PRIMARY KEY,
    result       TEXT NOT NULL,
    task_run_id  TEXT NOT NULL,
    created      TEXT NOT NULL,
    expires      TEXT
);

CREATE TABLE variables (
    name     TEXT PRIMARY KEY,
    value    TEXT NOT NULL,
    updated  TEXT NOT NULL
);
