-- Portable between SQLite and PostgreSQL: integers are BIGINT, flags are BIGINT 0/1, ids are assigned by
-- the registry under its write lock (no sequences), so both backends share one migration.

CREATE TABLE schemas (
    id BIGINT PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    schema_type TEXT NOT NULL,
    schema_text TEXT NOT NULL,
    references_json TEXT NOT NULL
);

CREATE TABLE subject_versions (
    subject TEXT NOT NULL,
    version BIGINT NOT NULL,
    schema_id BIGINT NOT NULL REFERENCES schemas (id),
    deleted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);

CREATE INDEX subject_versions_by_schema ON subject_versions (schema_id);

CREATE TABLE schema_references (
    schema_id BIGINT NOT NULL REFERENCES schemas (id),
    name TEXT NOT NULL,
    ref_subject TEXT NOT NULL,
    ref_version BIGINT NOT NULL,
    PRIMARY KEY (schema_id, name)
);

CREATE INDEX schema_references_by_target ON schema_references (ref_subject, ref_version);

-- scope '' is the global configuration; otherwise a subject name.
CREATE TABLE configs (
    scope TEXT PRIMARY KEY,
    compatibility TEXT NOT NULL,
    policy TEXT NOT NULL
);

CREATE TABLE modes (
    scope TEXT PRIMARY KEY,
    mode TEXT NOT NULL
);
