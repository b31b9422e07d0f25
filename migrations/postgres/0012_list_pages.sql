-- Every list of the API is a keyset page: each walks an index in its own order from
-- where the page before stopped, so a page costs the same however long the list is.

-- A workspace's keys, oldest first (ids sort by creation time).
DROP INDEX api_keys_workspace;
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);

-- A workspace's components, newest first.
CREATE INDEX workspace_components_created ON workspace_components (workspace_id, created, digest);

-- A flow run's task runs in call order, ties and those without a position by id.
DROP INDEX task_runs_flow_run;
CREATE INDEX task_runs_flow_run ON task_runs (flow_run_id, position, id);

-- A flow run's artifacts, oldest first; an artifact key's versions, latest first.
DROP INDEX artifacts_flow_run;
CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id, created, id);
DROP INDEX artifacts_workspace_key;
CREATE INDEX artifacts_workspace_key ON artifacts (workspace_id, key, created, id);

-- A deployment's schedules, oldest first (ids sort by creation time).
DROP INDEX schedules_deployment;
CREATE INDEX schedules_deployment ON schedules (deployment_id, id);
