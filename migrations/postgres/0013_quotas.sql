-- Workspace quotas set by the admin (NULL: none), the fuel and CPU time each workspace
-- used per hour (all nodes add to it), and the bytes of logs, artifacts and results
-- stored for each workspace.

CREATE TABLE workspace_quotas (
    workspace_id    TEXT PRIMARY KEY,
    runs_in_flight  BIGINT,
    task_slots      BIGINT,
    memory_mb       BIGINT,
    storage_mb      BIGINT,
    components      BIGINT,
    fuel_per_hour   BIGINT,
    updated         TEXT NOT NULL
);

CREATE TABLE workspace_cpu (
    workspace_id  TEXT NOT NULL,
    -- Hours since the Unix epoch.
    period        BIGINT NOT NULL,
    fuel          BIGINT NOT NULL DEFAULT 0,
    cpu_ms        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, period)
);

CREATE TABLE workspace_storage (
    workspace_id  TEXT PRIMARY KEY,
    bytes         BIGINT NOT NULL DEFAULT 0
);

-- What is stored already (a log line counts 128 bytes beyond its message).
INSERT INTO workspace_storage (workspace_id, bytes)
SELECT workspace_id, CAST(SUM(bytes) AS BIGINT) FROM (
    SELECT r.workspace_id AS workspace_id, LENGTH(l.message) + 128 AS bytes
      FROM logs l JOIN flow_runs r ON r.id = l.flow_run_id
     WHERE r.workspace_id IS NOT NULL
    UNION ALL
    SELECT workspace_id, LENGTH(data) FROM artifacts WHERE workspace_id IS NOT NULL
    UNION ALL
    SELECT r.workspace_id, LENGTH(t.result)
      FROM task_runs t JOIN flow_runs r ON r.id = t.flow_run_id
     WHERE t.result IS NOT NULL AND r.workspace_id IS NOT NULL
    UNION ALL
    SELECT workspace_id, LENGTH(result) FROM flow_runs
     WHERE result IS NOT NULL AND workspace_id IS NOT NULL
) stored
GROUP BY workspace_id;
