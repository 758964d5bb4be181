-- The registry's tables, created at start with IF NOT EXISTS (portable SQLite/PostgreSQL SQL, no
-- migrator, `feature_store_` prefix so the registry can share a database with other services).

-- One row per declared object; `definition` is the object as JSON (see registry/record.rs).
CREATE TABLE IF NOT EXISTS feature_store_objects (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    owner TEXT NOT NULL,
    tags TEXT NOT NULL,
    update_time BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- How far each feature view is materialized, in microseconds since the epoch; only moves forward.
CREATE TABLE IF NOT EXISTS feature_store_watermarks (
    feature_view TEXT PRIMARY KEY,
    materialized_until BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

-- One row: a counter every apply that changes something increments (readers can cache by it), and its
-- update also takes the write lock first, so applies never interleave.
CREATE TABLE IF NOT EXISTS feature_store_registry_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

INSERT INTO feature_store_registry_version (id, version, update_time) VALUES (1, 0, 0)
    ON CONFLICT (id) DO NOTHING;
