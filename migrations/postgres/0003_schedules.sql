-- Deployment schedules. A schedule's runs carry its id, and their idempotency key is
-- "schedule:<id>:<fire time>", so the unique index on (deployment_id, idempotency_key)
-- makes each (schedule, fire time) one run, whatever restarts or servers race.

CREATE TABLE schedules (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL,
    deployment_id    TEXT NOT NULL,
    spec             TEXT NOT NULL,
    parameters       TEXT NOT NULL,
    active           BIGINT NOT NULL,
    catchup          TEXT NOT NULL,
    catchup_limit    BIGINT NOT NULL,
    overlap          TEXT NOT NULL,
    -- Runs exist for every fire time up to here.
    scheduled_until  TEXT,
    created          TEXT NOT NULL,
    updated          TEXT NOT NULL
);
CREATE INDEX schedules_deployment ON schedules (deployment_id);
CREATE INDEX schedules_active ON schedules (active);

ALTER TABLE flow_runs ADD COLUMN schedule_id TEXT;
CREATE INDEX flow_runs_schedule ON flow_runs (schedule_id, expected_start);
