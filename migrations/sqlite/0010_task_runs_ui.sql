-- The indexes of the UI's lists and filters at millions of runs.
--
-- Task runs carry their workspace (the task-runs tab filters and pages them per
-- workspace without a join) and the task runs they waited for (`wait_for`), which the
-- run page's dependency graph draws: `upstream` is a JSON array of task run ids, NULL
-- when the run waited for none.

ALTER TABLE task_runs ADD COLUMN workspace_id TEXT;
ALTER TABLE task_runs ADD COLUMN upstream TEXT;
UPDATE task_runs SET workspace_id =
    (SELECT f.workspace_id FROM flow_runs f WHERE f.id = task_runs.flow_run_id);
CREATE INDEX task_runs_workspace ON task_runs (workspace_id, id);
CREATE INDEX task_runs_workspace_state ON task_runs (workspace_id, state_type, id);
CREATE INDEX task_runs_workspace_task ON task_runs (workspace_id, task_name, id);

-- Artifacts carry their workspace too: its keys are listed in key order.
ALTER TABLE artifacts ADD COLUMN workspace_id TEXT;
UPDATE artifacts SET workspace_id =
    (SELECT f.workspace_id FROM flow_runs f WHERE f.id = artifacts.flow_run_id);
CREATE INDEX artifacts_workspace_key ON artifacts (workspace_id, key, created);

-- The flow filter, newest first; the dashboard's counts by time and state from the
-- index alone.
CREATE INDEX flow_runs_workspace_flow ON flow_runs (workspace_id, flow_name, id);
DROP INDEX flow_runs_workspace_created;
CREATE INDEX flow_runs_workspace_created ON flow_runs (workspace_id, created, state_type);

-- The tag filter: one row per tag of a run, kept by triggers whatever writes the run.
CREATE TABLE flow_run_tags (
    workspace_id  TEXT NOT NULL,
    tag           TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    PRIMARY KEY (workspace_id, tag, run_id)
) WITHOUT ROWID;
CREATE INDEX flow_run_tags_run ON flow_run_tags (run_id);
INSERT OR IGNORE INTO flow_run_tags (workspace_id, tag, run_id)
    SELECT f.workspace_id, t.value, f.id FROM flow_runs f, json_each(f.tags) t
    WHERE f.workspace_id IS NOT NULL AND t.type = 'text';
CREATE TRIGGER flow_run_tags_insert AFTER INSERT ON flow_runs
    WHEN new.workspace_id IS NOT NULL AND new.tags <> '[]'
BEGIN
    INSERT OR IGNORE INTO flow_run_tags (workspace_id, tag, run_id)
        SELECT new.workspace_id, value, new.id FROM json_each(new.tags) WHERE type = 'text';
END;
CREATE TRIGGER flow_run_tags_delete AFTER DELETE ON flow_runs
BEGIN
    DELETE FROM flow_run_tags WHERE run_id = old.id;
END;

-- Name search ("contains"): a trigram index of run names. New runs are added in bulk by
-- the server's upkeep (and before a search), off the write path: `run_names_rowid` in
-- settings is the last flow_runs rowid indexed. Deletes and renames of indexed runs are
-- kept by triggers.
CREATE VIRTUAL TABLE flow_run_names USING fts5(
    name, content = 'flow_runs', content_rowid = 'rowid', tokenize = 'trigram', detail = 'none'
);
INSERT INTO flow_run_names (flow_run_names) VALUES ('rebuild');
INSERT INTO settings (key, value)
    SELECT 'run_names_rowid', CAST(COALESCE(MAX(rowid), 0) AS TEXT) FROM flow_runs;
CREATE TRIGGER flow_run_names_delete AFTER DELETE ON flow_runs
    WHEN old.rowid <= (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'run_names_rowid')
BEGIN
    INSERT INTO flow_run_names (flow_run_names, rowid, name) VALUES ('delete', old.rowid, old.name);
END;
CREATE TRIGGER flow_run_names_update AFTER UPDATE OF name ON flow_runs
    WHEN old.rowid <= (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'run_names_rowid')
BEGIN
    INSERT INTO flow_run_names (flow_run_names, rowid, name) VALUES ('delete', old.rowid, old.name);
    INSERT INTO flow_run_names (rowid, name) VALUES (new.rowid, new.name);
END;
