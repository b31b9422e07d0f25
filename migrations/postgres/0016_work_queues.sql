-- Work queues inside pools (Prefect's work queues): a deployment names a queue of its
-- pool; when the pool is at its limit, waiting runs start by their queue's priority
-- (1 first), then by expected start. A queue may have its own concurrency limit and be
-- paused. Every pool has a queue 'default' (priority 1) without a row until it is changed.

CREATE TABLE work_queues (
    workspace_id       TEXT NOT NULL,
    pool               TEXT NOT NULL,
    name               TEXT NOT NULL,
    priority           BIGINT NOT NULL,
    concurrency_limit  BIGINT,
    paused             BIGINT NOT NULL DEFAULT 0,
    created            TEXT NOT NULL,
    PRIMARY KEY (workspace_id, pool, name)
);

ALTER TABLE deployments ADD COLUMN work_queue TEXT NOT NULL DEFAULT 'default';
