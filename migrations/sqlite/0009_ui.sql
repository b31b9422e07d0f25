-- Web UI sessions, and the indexes of the UI's queries.
--
-- A browser signed in with an API key (or the admin token) holds a
-- random session token in an HttpOnly cookie; only its sha256 is stored. A session ends
-- when it expires, when the user signs out, or when the key it was opened with is
-- revoked. `csrf` is the token every form that changes something must bring back.

CREATE TABLE ui_sessions (
    token_hash    TEXT PRIMARY KEY,
    workspace_id  TEXT,
    key_id        TEXT,
    admin         INTEGER NOT NULL DEFAULT 0,
    csrf          TEXT NOT NULL,
    created       TEXT NOT NULL,
    expires       TEXT NOT NULL,
    revoked       TEXT
);
CREATE INDEX ui_sessions_key ON ui_sessions (key_id);

-- The UI's windows (runs of a workspace created since a time) and state filters.
CREATE INDEX flow_runs_workspace_created ON flow_runs (workspace_id, created);
CREATE INDEX flow_runs_workspace_state ON flow_runs (workspace_id, state_type, id);
