-- Global concurrency and rate limits of a workspace (Prefect's `concurrency("db")` and
-- `rate_limit("api")`). A limit has a number of slots; a run occupying some holds one row
-- of `slots` per slot (key 'limit:<workspace>:<name>'), given back when it is done, and
-- with the other rows of its node when the node is presumed dead. A rate limit's slots
-- decay instead: `decaying` slots were in use at `decayed_at`, and
-- `slot_decay_per_second` of them come back every second.

CREATE TABLE global_concurrency_limits (
    workspace_id           TEXT NOT NULL,
    name                   TEXT NOT NULL,
    slots                  BIGINT NOT NULL,
    slot_decay_per_second  DOUBLE PRECISION,
    active                 BIGINT NOT NULL DEFAULT 1,
    decaying               DOUBLE PRECISION NOT NULL DEFAULT 0,
    decayed_at             TEXT,
    created                TEXT NOT NULL,
    updated                TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
