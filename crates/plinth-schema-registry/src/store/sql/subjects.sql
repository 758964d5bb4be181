SELECT subject, SUM(CASE WHEN deleted = 0 THEN 1 ELSE 0 END) AS live
FROM subject_versions
WHERE substr(subject, 1, length($1)) = $1
GROUP BY subject
ORDER BY subject
