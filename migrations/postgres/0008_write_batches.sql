-- One row per transaction of the store's writer, inserted in that transaction. When a
-- COMMIT goes unanswered (the connection broke), the retry inserts the same id first:
-- it waits for the earlier transaction if it still runs, and finds the row if it
-- committed, so history rows and logs are never applied twice. Rows are deleted after
-- a while (by the writer). SQLite needs none: it answers every COMMIT.
CREATE TABLE write_batches (
    id       TEXT PRIMARY KEY,
    created  TEXT NOT NULL
);
CREATE INDEX write_batches_created ON write_batches (created);
