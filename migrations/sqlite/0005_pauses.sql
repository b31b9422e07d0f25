-- Pauses of flow runs (Prefect's pause_flow_run and suspend_flow_run): what a paused run
-- waits for and how the wait ended. A pause sits at a call position of its run, like a
-- task call, so a run executed again after a resume replays the stored input there.

CREATE TABLE pauses (
    id               TEXT PRIMARY KEY,
    flow_run_id      TEXT NOT NULL,
    position         INTEGER NOT NULL,
    key              TEXT,
    description      TEXT,
    -- JSON Schema of the input a resume must bring; NULL: it brings none.
    input_schema     TEXT,
    -- 1: the run released its instance and runs again on resume.
    suspend          INTEGER NOT NULL,
    timeout_seconds  REAL NOT NULL,
    timeout_at       TEXT NOT NULL,
    created          TEXT NOT NULL,
    -- NULL while open; then 'resumed', 'timed-out' or 'cancelled'.
    resolution       TEXT,
    resolved         TEXT,
    -- The resume's input, JSON text.
    input            TEXT
);
CREATE INDEX pauses_flow_run ON pauses (flow_run_id, position);
CREATE INDEX pauses_open ON pauses (resolution, timeout_at);
