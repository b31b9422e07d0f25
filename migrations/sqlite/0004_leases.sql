-- Leases: every server node heartbeats in `nodes`; a flow run a node holds carries its
-- id and a fencing token that grows with every claim, so a node that lost the run
-- (it stopped heartbeating and another node took the run over) cannot write to it.
-- `crash_count` counts the takeovers of a run that had started; `cancel_requested` asks
-- the holding node, whichever it is, to cancel the run.

CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    started    TEXT NOT NULL,
    heartbeat  TEXT NOT NULL
);

ALTER TABLE flow_runs ADD COLUMN node_id TEXT;
ALTER TABLE flow_runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flow_runs ADD COLUMN cancel_requested TEXT;
ALTER TABLE flow_runs ADD COLUMN crash_count INTEGER NOT NULL DEFAULT 0;
-- Runs nobody holds yet, by due time (the claim query's order). Other lease queries find
-- held runs through the index on state_type: few runs are unfinished.
CREATE INDEX flow_runs_unclaimed ON flow_runs (expected_start)
    WHERE node_id IS NULL AND state_type = 'SCHEDULED';
