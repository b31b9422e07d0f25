-- Name search of a common text walks the workspace's runs newest first and checks
-- each name: with the name in the index the check needs no read of the run's row, so
-- a scan costs a fraction of a microsecond per run and only matching rows are read.
DROP INDEX flow_runs_workspace;
CREATE INDEX flow_runs_workspace ON flow_runs (workspace_id, id, name);
