-- Samples move from one row per sample to one row per block of 128 series ids per
-- timestamp: the value of series `id` at `ts` is vals[(id & 127) + 1] of the row
-- (target_id, id >> 7, ts); NULL where the series has no sample. At 100k samples/s
-- one row per sample cost PostgreSQL more CPU than Prometheus spends in all; a
-- block row carries 128 values for one tuple header and one index entry, stays
-- under the TOAST threshold (128 × 8 bytes), and a page of one series still reads
-- only ~1 kB per timestamp. The table is partitioned by day so that retention
-- drops whole partitions instead of deleting rows.
CREATE TABLE sample_blocks (
    target_id integer            NOT NULL,
    block     bigint             NOT NULL,
    ts        timestamptz        NOT NULL,
    vals      double precision[] NOT NULL,
    -- One series' history: a backward scan over (target_id, block) by time.
    -- Also the idempotence key: a retried batch conflicts here and is skipped.
    PRIMARY KEY (target_id, block, ts)
) PARTITION BY RANGE (ts);
-- A whole target, newest first: (ts DESC, block DESC) within a target.
CREATE INDEX sample_blocks_target_time_idx ON sample_blocks (target_id, ts, block);
-- Everything newest first, across targets.
CREATE INDEX sample_blocks_time_idx ON sample_blocks (ts, block, target_id);

-- Creates the partition of the UTC day holding `day`, if it does not exist yet.
-- Safe to call concurrently (sharded checkers): losing the race is not an error.
CREATE FUNCTION metr_ensure_sample_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF sample_blocks FOR VALUES FROM (%L) TO (%L)',
        'sample_blocks_' || to_char(day, 'YYYYMMDD'),
        day::timestamp AT TIME ZONE 'UTC',
        (day + 1)::timestamp AT TIME ZONE 'UTC');
EXCEPTION
    WHEN duplicate_table OR unique_violation OR invalid_object_definition THEN
        NULL;
END $$;

-- Move what V1 stored into blocks of the same days.
DO $$
DECLARE d date;
BEGIN
    FOR d IN SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM samples LOOP
        PERFORM metr_ensure_sample_partition(d);
    END LOOP;
END $$;

INSERT INTO sample_blocks (target_id, block, ts, vals)
SELECT k.target_id, k.block, k.ts,
       ARRAY(SELECT s.value
             FROM generate_series(0, k.top) AS slot
             LEFT JOIN samples s ON s.series_id = k.block * 128 + slot AND s.ts = k.ts
             ORDER BY slot)
FROM (SELECT se.target_id, s.series_id >> 7 AS block, s.ts, max(s.series_id & 127) AS top
      FROM samples s JOIN series se ON se.id = s.series_id
      GROUP BY 1, 2, 3) AS k;

DROP TABLE samples;

-- One row per stored sample, whatever the physical layout: what scenarios and
-- users query with SQL. A future layout change keeps this view.
CREATE VIEW sample_values AS
SELECT t.name AS target, se.name, se.labels, b.ts, v.value, se.id AS series_id
FROM sample_blocks b
JOIN targets t ON t.id = b.target_id
CROSS JOIN LATERAL unnest(b.vals) WITH ORDINALITY AS v(value, slot)
JOIN series se ON se.id = b.block * 128 + v.slot - 1
WHERE v.value IS NOT NULL;

-- The V1 table's shape, for SQL written against it.
CREATE VIEW samples AS
SELECT b.block * 128 + v.slot - 1 AS series_id, b.ts, v.value
FROM sample_blocks b
CROSS JOIN LATERAL unnest(b.vals) WITH ORDINALITY AS v(value, slot)
WHERE v.value IS NOT NULL;

-- /api/v1/series by target or by name in id order, without walking every series.
CREATE INDEX series_target_id_idx ON series (target_id, id);
CREATE INDEX series_name_id_idx ON series (name, id);
