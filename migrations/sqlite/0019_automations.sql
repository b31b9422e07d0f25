-- Automations: a trigger (a flow run entering a state, N times within a window; a run
-- staying in a state too long; an event posted to the automation) and actions. Each
-- event fires an automation once (automation_runs is unique per event), whichever node
-- sees it; a node executing a run's actions holds a lease on it.

CREATE TABLE automations (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    enabled       INTEGER NOT NULL DEFAULT 1,
    trigger_spec  TEXT NOT NULL,
    actions       TEXT NOT NULL,
    fired_at      TEXT,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Events counted towards a threshold ("3 failures within 10 minutes").
CREATE TABLE automation_events (
    automation_id  TEXT NOT NULL,
    event_key      TEXT NOT NULL,
    occurred       TEXT NOT NULL,
    PRIMARY KEY (automation_id, event_key)
);

CREATE TABLE automation_runs (
    id             TEXT PRIMARY KEY,
    automation_id  TEXT NOT NULL,
    workspace_id   TEXT NOT NULL,
    event_key      TEXT NOT NULL,
    event          TEXT NOT NULL,
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt   TEXT NOT NULL,
    results        TEXT NOT NULL,
    error          TEXT,
    lease_owner    TEXT,
    lease_until    TEXT,
    created        TEXT NOT NULL,
    updated        TEXT NOT NULL,
    UNIQUE (automation_id, event_key)
);
CREATE INDEX automation_runs_due ON automation_runs (state, next_attempt);
CREATE INDEX automation_runs_of ON automation_runs (workspace_id, automation_id, id);
