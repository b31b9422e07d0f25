-- Component bytes in the database, for servers that share one (PostgreSQL): a node that
-- must run a component another node received fetches it from here. A single SQLite
-- server keeps components only on its disk and leaves this table empty.

CREATE TABLE component_blobs (
    digest  TEXT PRIMARY KEY,
    bytes   BLOB NOT NULL
);
