-- The indexes of the UI's lists and filters at millions of runs.
--
-- Task runs carry their workspace (the task-runs tab filters and pages them per
-- workspace without a join) and the task runs they waited for (`wait_for`), which the
-- run page's dependency graph draws: `upstream` is a JSON array of task run ids, NULL
-- when the run waited for none.

ALTER TABLE task_runs ADD COLUMN workspace_id TEXT;
ALTER TABLE task_runs ADD COLUMN upstream TEXT;
UPDATE task_runs SET workspace_id = f.workspace_id
    FROM flow_runs f WHERE f.id = task_runs.flow_run_id;
CREATE INDEX task_runs_workspace ON task_runs (workspace_id, id);
CREATE INDEX task_runs_workspace_state ON task_runs (workspace_id, state_type, id);
CREATE INDEX task_runs_workspace_task ON task_runs (workspace_id, task_name, id);

-- Artifacts carry their workspace too: its keys are listed in key order.
ALTER TABLE artifacts ADD COLUMN workspace_id TEXT;
UPDATE artifacts SET workspace_id = f.workspace_id
    FROM flow_runs f WHERE f.id = artifacts.flow_run_id;
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
);
CREATE INDEX flow_run_tags_run ON flow_run_tags (run_id);
INSERT INTO flow_run_tags (workspace_id, tag, run_id)
    SELECT DISTINCT f.workspace_id, t.value, f.id
    FROM flow_runs f, jsonb_array_elements_text(f.tags::jsonb) AS t(value)
    WHERE f.workspace_id IS NOT NULL AND jsonb_typeof(f.tags::jsonb) = 'array';
CREATE FUNCTION flow_run_tags_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.workspace_id IS NOT NULL AND NEW.tags <> '[]' THEN
        INSERT INTO flow_run_tags (workspace_id, tag, run_id)
            SELECT NEW.workspace_id, value, NEW.id
            FROM jsonb_array_elements_text(NEW.tags::jsonb) AS t(value)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER flow_run_tags_insert AFTER INSERT ON flow_runs
    FOR EACH ROW EXECUTE FUNCTION flow_run_tags_insert();
CREATE FUNCTION flow_run_tags_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM flow_run_tags WHERE run_id = OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER flow_run_tags_delete AFTER DELETE ON flow_runs
    FOR EACH ROW EXECUTE FUNCTION flow_run_tags_delete();

-- Name search ("contains"): a trigram index of run names where the database has
-- pg_trgm (a trusted extension any database owner may create); without it, search
-- scans.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available: run name search scans';
END $$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX flow_runs_name_trgm ON flow_runs USING gin (name gin_trgm_ops);
    END IF;
END $$;
