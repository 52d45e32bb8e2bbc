-- A series is unique by (target, name, labels), but a btree index row holds at
-- most 2704 bytes: a label value of a few KiB that does not compress (a
-- random token, a long path) made the series impossible to create, and every
-- scrape of its target lost its samples. The key is now a SHA-256 of the
-- name and the labels' canonical text (jsonb prints equal values the same
-- way), 32 bytes whatever the labels hold; the writer still compares name and
-- labels themselves when it looks a series up.
--
-- convert_to is only STABLE because it depends on the database's encoding,
-- which never changes for a database: the key is immutable in fact, and is
-- declared so, as an index needs.
CREATE FUNCTION metr_series_key(name text, labels jsonb) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT sha256(convert_to(name || labels::text, 'UTF8')) $$;

ALTER TABLE series DROP CONSTRAINT series_target_id_name_labels_key;
CREATE UNIQUE INDEX series_key_idx ON series (target_id, metr_series_key(name, labels));
