-- Plugins: components whose tasks any flow of the workspace calls by name
-- ("http/request", "http@2/request"). Each registration of a new component under a name
-- is a new version (1, 2, ...); the same component again is the version it already is.
-- Built-in plugins, shipped with Weir, have the workspace '' and are seen by every
-- workspace.

CREATE TABLE plugins (
    workspace_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    digest        TEXT NOT NULL,
    description   TEXT,
    created       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name, version)
);

CREATE UNIQUE INDEX plugins_by_digest ON plugins (workspace_id, name, digest);

-- The workspace secrets a deployment's runs let plugins read (a JSON list of names); a
-- plugin reads none unless it is named here.
ALTER TABLE deployments ADD COLUMN plugin_secrets TEXT NOT NULL DEFAULT '[]';
