-- Scale (issue 18): events range-partitioned by the month (UTC) of their time, so that
-- retention drops whole partitions; exactly-once on (project, id) kept by `event_keys`,
-- the one table with that unique key; zero counts, zero cost shares and zero savings
-- stored as NULL (a NULL costs one bit, a zero bigint eight bytes). Existing databases
-- migrate in place: the rows move into their months' partitions.

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
DROP INDEX events_time;
DROP INDEX events_unpriced;

-- The keys of every stored event, whatever month holds it. A writer inserts an event's
-- key first: the unique index decides, across all months, which copy is new.
-- `month` names the partition that holds the event: retention deletes the keys of the
-- months it drops.
CREATE TABLE event_keys (
    project text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    month   date NOT NULL,
    CONSTRAINT event_keys_pkey PRIMARY KEY (project, id)
);
CREATE INDEX event_keys_month ON event_keys USING brin (month);

CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS)
    PARTITION BY RANGE (time);
ALTER TABLE events ALTER COLUMN tags DROP DEFAULT;

-- Counts, cost shares and savings: NULL when zero (readers take NULL as 0).
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'events'
          AND data_type = 'bigint' AND is_nullable = 'NO'
    LOOP
        EXECUTE format('ALTER TABLE events ALTER COLUMN %I DROP NOT NULL, ALTER COLUMN %I DROP DEFAULT',
                       name, name);
    END LOOP;
END $$;

CREATE INDEX events_time ON events USING brin (time);
CREATE INDEX events_unpriced ON events (provider, model) WHERE cost_nanos IS NULL;

-- Creates the partition of `events` for the month starting `month` (UTC) unless it
-- exists. Writers call it for a month they have not seen; two at once wait for each other.
CREATE FUNCTION llm_meter_events_partition(month date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := 'events_' || to_char(first, 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(7236281733370311014);
    IF to_regclass(quote_ident(name)) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            name,
            first::timestamp AT TIME ZONE 'UTC',
            (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    END IF;
END $$;

DO $$
DECLARE
    month date;
    columns text;
    lean text;
BEGIN
    FOR month IN
        SELECT DISTINCT (date_trunc('month', time, 'UTC') AT TIME ZONE 'UTC')::date
        FROM events_unpartitioned
    LOOP
        PERFORM llm_meter_events_partition(month);
    END LOOP;
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),
           string_agg(CASE WHEN data_type = 'bigint' AND column_name NOT LIKE '%cost_nanos'
                           THEN format('NULLIF(%I, 0)', column_name)
                           ELSE quote_ident(column_name) END,
                      ', ' ORDER BY ordinal_position)
    INTO columns, lean
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'events_unpartitioned';
    EXECUTE format('INSERT INTO events (%s) SELECT %s FROM events_unpartitioned', columns, lean);
END $$;

INSERT INTO event_keys (project, id, month)
SELECT project, id, (date_trunc('month', time, 'UTC') AT TIME ZONE 'UTC')::date
FROM events_unpartitioned;

DROP TABLE events_unpartitioned;
