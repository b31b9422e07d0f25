-- Concurrency slots taken in the database, so that limits (pool, deployment, tag) hold
-- across every node sharing it (PostgreSQL). A row is one run holding one limited key;
-- the rows of a node presumed dead are deleted when its runs are taken over. A single
-- SQLite server counts slots in memory and leaves this table empty.

CREATE TABLE slots (
    key      TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    node_id  TEXT NOT NULL,
    taken    TEXT NOT NULL,
    PRIMARY KEY (key, run_id)
);
CREATE INDEX slots_run ON slots (run_id);
CREATE INDEX slots_node ON slots (node_id);
