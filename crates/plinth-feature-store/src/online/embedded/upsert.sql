-- Writes a row unless the stored one is newer: (event_ts, created_ts) greater or equal replaces.
INSERT INTO feature_store_online (entity_key, view, event_ts, created_ts, row)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (entity_key, view) DO UPDATE SET
    event_ts = excluded.event_ts,
    created_ts = excluded.created_ts,
    row = excluded.row
WHERE (excluded.event_ts, excluded.created_ts)
    >= (feature_store_online.event_ts, feature_store_online.created_ts)
