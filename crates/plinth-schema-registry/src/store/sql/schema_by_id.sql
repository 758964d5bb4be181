SELECT id, fingerprint, schema_type, schema_text, references_json
FROM schemas
WHERE id = $1
