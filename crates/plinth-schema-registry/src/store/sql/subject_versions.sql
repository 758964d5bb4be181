SELECT version, schema_id, deleted
FROM subject_versions
WHERE subject = $1
ORDER BY version
