-- Compressed chunks. Block rows cost about 10.5 bytes a sample on disk (8 for
-- the value, the rest row and index overhead), six times Prometheus. The
-- checker now keeps the recent ones (its head window) as they are written and
-- rewrites closed time windows of each target's block into one row here: the
-- block's timestamps once, then each series' values as decimals or XOR'd
-- floats (system/storage/src/chunk.rs), measured at 0.14 bytes a sample on
-- constant series and 1.6 on realistic ones, index and TOAST included.
--
-- A chunk never spans two UTC days, so retention still drops whole day
-- partitions, of this table as of sample_blocks.
CREATE TABLE sample_chunks (
    target_id integer     NOT NULL,
    block     bigint      NOT NULL,
    -- First and last timestamps held.
    ts_from   timestamptz NOT NULL,
    ts_to     timestamptz NOT NULL,
    -- Timestamps (block rows) and samples held.
    n_rows    integer     NOT NULL,
    samples   integer     NOT NULL,
    data      bytea       NOT NULL,
    PRIMARY KEY (target_id, block, ts_from)
) PARTITION BY RANGE (ts_from);
-- Walks newest first, of a target or of all; the oldest sample held.
CREATE INDEX sample_chunks_target_time_idx ON sample_chunks (target_id, ts_to);
CREATE INDEX sample_chunks_time_idx ON sample_chunks (ts_to);
CREATE INDEX sample_chunks_from_idx ON sample_chunks (ts_from);

-- Creates the partition of the UTC day holding `day`, if it does not exist yet.
CREATE FUNCTION metr_ensure_chunk_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF sample_chunks FOR VALUES FROM (%L) TO (%L)',
        'sample_chunks_' || to_char(day, 'YYYYMMDD'),
        day::timestamp AT TIME ZONE 'UTC',
        (day + 1)::timestamp AT TIME ZONE 'UTC');
EXCEPTION
    WHEN duplicate_table OR unique_violation OR invalid_object_definition THEN
        NULL;
END $$;

-- The double whose IEEE 754 bits are `bits` (PostgreSQL has no such cast).
-- Exact: the mantissa times powers of two, each product representable.
-- PostgreSQL keeps no NaN payload: every NaN is NaN.
CREATE FUNCTION metr_float8_of_bits(bits bigint) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    e int := ((bits >> 52) & 2047)::int;
    f bigint := bits & 4503599627370495;
    k int;
    v float8;
BEGIN
    IF e = 2047 THEN
        IF f <> 0 THEN
            RETURN 'NaN'::float8;
        END IF;
        v := 'Infinity'::float8;
    ELSE
        IF e = 0 THEN
            k := -1074;
        ELSE
            f := f + 4503599627370496;
            k := e - 1075;
        END IF;
        -- Two factors: 2^k alone underflows below 2^-1022.
        v := f::float8 * power(2::float8, greatest(k, -1000)) * power(2::float8, least(k + 1000, 0));
    END IF;
    IF bits < 0 THEN
        v := -v;
    END IF;
    RETURN v;
END $$;

-- A varint at byte `pos` of `data`: its value and the position after it.
CREATE FUNCTION metr_varint(data bytea, INOUT pos int, OUT value bigint)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    b int;
    shift int := 0;
BEGIN
    value := 0;
    LOOP
        b := get_byte(data, pos);
        pos := pos + 1;
        value := value | ((b & 127)::bigint << shift);
        EXIT WHEN b < 128;
        shift := shift + 7;
    END LOOP;
END $$;

-- The samples of a chunk of block `block`, as the storage crate's
-- chunk::decode reads them: for SQL only (the API decodes chunks itself),
-- about a hundred times slower. Zigzag words below 2^62 only: every timestamp
-- PostgreSQL stores, every decimal mantissa (< 2^53).
CREATE FUNCTION metr_chunk_samples(block bigint, data bytea)
RETURNS TABLE (series_id bigint, ts timestamptz, value float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
#variable_conflict use_variable
DECLARE
    pos int;
    word bigint;
    n int;
    times bigint[];
    t bigint := 0;
    delta bigint := 0;
    slots int;
    len int;
    col int;
    mode int;
    bitmap int;
    vstart int;
    p int;
    k int;
    m bigint;
    scale float8;
    bits varbit;
    bp int;
    v bigint;
    lead int := 0;
    trail int := 0;
    sig int;
    present bool;
BEGIN
    SELECT * INTO pos, word FROM metr_varint(data, 0);
    n := word;
    times := array_fill(0::bigint, ARRAY[greatest(n, 1)]);
    FOR i IN 1..n LOOP
        SELECT * INTO pos, word FROM metr_varint(data, pos);
        word := (word >> 1) # -(word & 1);
        IF i = 1 THEN
            t := word;
        ELSIF i = 2 THEN
            delta := word;
            t := t + delta;
        ELSE
            delta := delta + word;
            t := t + delta;
        END IF;
        times[i] := t;
    END LOOP;
    SELECT * INTO pos, word FROM metr_varint(data, pos);
    slots := word;
    FOR slot IN 0..slots - 1 LOOP
        SELECT * INTO pos, word FROM metr_varint(data, pos);
        len := word;
        col := pos;
        pos := pos + len;
        CONTINUE WHEN len = 0;
        mode := get_byte(data, col);
        IF mode & 15 = 1 THEN
            bitmap := -1;
            vstart := col + 1;
        ELSE
            bitmap := col + 1;
            vstart := col + 1 + (n + 7) / 8;
        END IF;
        series_id := block * 128 + slot;
        k := 0;
        IF mode & 240 = 16 THEN
            scale := (ARRAY[1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
                            1000000000]::float8[])[get_byte(data, vstart) + 1];
            p := vstart + 1;
        ELSE
            -- substr counts from 1.
            bits := ('x' || encode(substr(data, vstart + 1, col + len - vstart), 'hex'))::varbit;
            bp := 1;
        END IF;
        FOR i IN 1..n LOOP
            present := bitmap < 0
                OR get_byte(data, bitmap + (i - 1) / 8) & (1 << ((i - 1) % 8)) <> 0;
            CONTINUE WHEN NOT present;
            IF mode & 240 = 16 THEN
                SELECT * INTO p, word FROM metr_varint(data, p);
                word := (word >> 1) # -(word & 1);
                IF k = 0 THEN
                    m := word;
                ELSIF k = 1 THEN
                    delta := word;
                    m := m + delta;
                ELSE
                    delta := delta + word;
                    m := m + delta;
                END IF;
                value := m::float8 / scale;
            ELSE
                IF k = 0 THEN
                    v := substring(bits FROM bp FOR 64)::bit(64)::bigint;
                    bp := bp + 64;
                ELSIF substring(bits FROM bp FOR 1) = B'0' THEN
                    bp := bp + 1;
                ELSE
                    IF substring(bits FROM bp + 1 FOR 1) = B'1' THEN
                        lead := (substring(bits FROM bp + 2 FOR 5)::bit(64) >> 59)::bigint;
                        sig := (substring(bits FROM bp + 7 FOR 6)::bit(64) >> 58)::bigint;
                        IF sig = 0 THEN
                            sig := 64;
                        END IF;
                        trail := 64 - lead - sig;
                        bp := bp + 13;
                    ELSE
                        bp := bp + 2;
                    END IF;
                    sig := 64 - lead - trail;
                    v := v # ((substring(bits FROM bp FOR sig)::bit(64) >> (64 - sig))::bigint << trail);
                    bp := bp + sig;
                END IF;
                value := metr_float8_of_bits(v);
            END IF;
            k := k + 1;
            ts := timestamptz 'epoch' + times[i] * interval '1 microsecond';
            RETURN NEXT;
        END LOOP;
    END LOOP;
END $$;

-- Both views now read the head and the chunks. A head row may repeat a
-- sample a chunk holds (a batch retried, or written while its window was
-- compacted) until the next compaction merges it: the chunk's, written
-- first, is the one shown, as the API does.
CREATE OR REPLACE VIEW sample_values AS
SELECT t.name AS target, se.name, se.labels, b.ts, v.value, se.id AS series_id
FROM sample_blocks b
JOIN targets t ON t.id = b.target_id
CROSS JOIN LATERAL unnest(b.vals) WITH ORDINALITY AS v(value, slot)
JOIN series se ON se.id = b.block * 128 + v.slot - 1
WHERE v.value IS NOT NULL
  AND NOT EXISTS (
      SELECT 1
      FROM (SELECT c.block, c.ts_to, c.data FROM sample_chunks c
            WHERE c.target_id = b.target_id AND c.block = b.block AND c.ts_from <= b.ts
            ORDER BY c.ts_from DESC LIMIT 1) c
      CROSS JOIN LATERAL metr_chunk_samples(c.block, c.data) s
      WHERE c.ts_to >= b.ts AND s.series_id = se.id AND s.ts = b.ts)
UNION ALL
SELECT t.name, se.name, se.labels, s.ts, s.value, se.id
FROM sample_chunks c
JOIN targets t ON t.id = c.target_id
CROSS JOIN LATERAL metr_chunk_samples(c.block, c.data) s
JOIN series se ON se.id = s.series_id;

CREATE OR REPLACE VIEW samples AS
SELECT b.block * 128 + v.slot - 1 AS series_id, b.ts, v.value
FROM sample_blocks b
CROSS JOIN LATERAL unnest(b.vals) WITH ORDINALITY AS v(value, slot)
WHERE v.value IS NOT NULL
  AND NOT EXISTS (
      SELECT 1
      FROM (SELECT c.block, c.ts_to, c.data FROM sample_chunks c
            WHERE c.target_id = b.target_id AND c.block = b.block AND c.ts_from <= b.ts
            ORDER BY c.ts_from DESC LIMIT 1) c
      CROSS JOIN LATERAL metr_chunk_samples(c.block, c.data) s
      WHERE c.ts_to >= b.ts AND s.series_id = b.block * 128 + v.slot - 1 AND s.ts = b.ts)
UNION ALL
SELECT s.series_id, s.ts, s.value
FROM sample_chunks c
CROSS JOIN LATERAL metr_chunk_samples(c.block, c.data) s;
