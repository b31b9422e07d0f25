-- Retention: finished runs older than a number of days, or past the newest N of their
-- scope, are deleted in the background. A deployment's policy replaces its workspace's;
-- a workspace's replaces the server's default. Each workspace counts what was deleted.
ALTER TABLE deployments ADD COLUMN retention_days INTEGER;
ALTER TABLE deployments ADD COLUMN retention_runs INTEGER;

CREATE TABLE workspace_retention (
    workspace_id   TEXT PRIMARY KEY,
    keep_days      INTEGER,
    keep_runs      INTEGER,
    -- Flow runs (subflows counted) deleted so far, and when the last were.
    runs_deleted   INTEGER NOT NULL DEFAULT 0,
    last_deleted   TEXT,
    updated        TEXT NOT NULL
);

-- Finished top-level runs by when they ended, per workspace and per deployment: what
-- retention reads, newest or oldest first, without touching runs in flight (the
-- workspace's holds the deployment, so counting the runs a policy keeps reads the index
-- alone).
CREATE INDEX flow_runs_ended_workspace ON flow_runs (workspace_id, end_time, id, deployment_id)
    WHERE parent_flow_run_id IS NULL AND end_time IS NOT NULL;
CREATE INDEX flow_runs_ended_deployment ON flow_runs (deployment_id, end_time, id)
    WHERE parent_flow_run_id IS NULL AND end_time IS NOT NULL;

-- Expired cache entries are deleted oldest first.
CREATE INDEX cache_entries_expires ON cache_entries (expires) WHERE expires IS NOT NULL;
