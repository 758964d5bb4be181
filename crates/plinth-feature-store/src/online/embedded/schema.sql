-- The embedded online store: the latest row per (entity key, feature view). event_ts and created_ts
-- repeat the row's header so the upsert can compare them without decoding the row.
CREATE TABLE IF NOT EXISTS feature_store_online (
    entity_key BLOB NOT NULL,
    view TEXT NOT NULL,
    event_ts BIGINT NOT NULL,
    created_ts BIGINT NOT NULL,
    row BLOB NOT NULL,
    PRIMARY KEY (entity_key, view)
)
