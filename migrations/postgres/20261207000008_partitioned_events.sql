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

-- The same columns, laid out so that no padding falls between them: the eight-byte
-- values first, then the booleans, then the variable-length text. Counts, cost shares
-- and savings (the bigint columns that were NOT NULL) become nullable: NULL when zero,
-- and readers take NULL as 0.
DO $$
DECLARE
    columns text;
BEGIN
    SELECT string_agg(
               format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                      CASE WHEN co.collname = 'C' THEN ' COLLATE "C"' ELSE '' END,
                      CASE WHEN a.attnotnull AND a.atttypid <> 'bigint'::regtype
                           THEN ' NOT NULL' ELSE '' END),
               ', '
               ORDER BY CASE WHEN t.typlen = 8 THEN 0 WHEN t.typlen > 0 THEN 1 ELSE 2 END,
                        a.attnum)
    INTO columns
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE a.attrelid = 'events_unpartitioned'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('CREATE TABLE events (%s) PARTITION BY RANGE (time)', columns);
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
