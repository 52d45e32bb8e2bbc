-- Targets the checker has seen. Small: one row per configured target.
CREATE TABLE targets (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    kind       text        NOT NULL CHECK (kind IN ('prometheus', 'http')),
    url        text        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);

-- Each series (target, name, labels) is stored once; samples reference it by id,
-- so the 100-million-row table holds 24 bytes of payload per sample, not label text.
-- jsonb equality is canonical (key order does not matter), so the unique key works.
CREATE TABLE series (
    id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id integer NOT NULL REFERENCES targets (id),
    name      text    NOT NULL,
    labels    jsonb   NOT NULL DEFAULT '{}',
    UNIQUE (target_id, name, labels)
);
-- Label matchers (`label=k=v`) use containment: labels @> '{"k":"v"}'.
CREATE INDEX series_labels_idx ON series USING gin (labels jsonb_path_ops);

-- The primary key doubles as the index for "newest samples of these series"
-- (a backward scan per series) and makes a retried batch idempotent: the writer
-- inserts with ON CONFLICT DO NOTHING, so a batch that committed but whose
-- acknowledgement was lost is not stored twice. No foreign key: series rows are
-- never deleted, and checking 100M inserts against series costs more than it buys.
CREATE TABLE samples (
    series_id bigint           NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (series_id, ts)
);
-- Time-range scans over everything (retention, "all samples since") stay cheap:
-- samples arrive in time order, which is what BRIN needs.
CREATE INDEX samples_ts_brin ON samples USING brin (ts);

CREATE TABLE checks (
    id          bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id   integer          NOT NULL REFERENCES targets (id),
    up          boolean          NOT NULL,
    http_status integer,
    latency_ms  double precision NOT NULL,
    error       text,
    checked_at  timestamptz      NOT NULL,
    UNIQUE (target_id, checked_at)
);
-- Serves /api/v1/checks?target=... newest first, with keyset pagination.
CREATE INDEX checks_target_time_idx ON checks (target_id, checked_at DESC, id DESC);
-- Serves /api/v1/checks without a target filter.
CREATE INDEX checks_time_idx ON checks (checked_at DESC, id DESC);
