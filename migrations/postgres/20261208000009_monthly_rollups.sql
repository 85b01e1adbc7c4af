-- Scale (issue 18), continued.
--
-- Monthly rollups: the same groups by UTC month, written in the same transaction as the
-- hourly and daily ones, so a month is one row per group instead of ~30 (a year by month
-- and project reads 12 rows per group, not 365); and each project's monthly totals
-- (every provider, model, tier and tag together), which spend by project and month and a
-- project's budget read when they ask nothing finer: a month of an organisation is one
-- row per project there. Both keep the spend sums only (request counts, bucket counts,
-- cost, list and reported cost): the per-bucket cost shares (pico-dollars, which would
-- pass 2^63 at $9.2M of one token type in a project's month) and the savings are read
-- from the daily rows. Both are filled from the daily rows.
DO $$
DECLARE
    definitions text;
    values_list text;
    sums text;
BEGIN
    SELECT string_agg(format('%I bigint NOT NULL DEFAULT 0', column_name), ', ' ORDER BY ordinal_position),
           string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),
           string_agg(format('sum(%I)', column_name), ', ' ORDER BY ordinal_position)
    INTO definitions, values_list, sums
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'rollups_daily'
      AND data_type = 'bigint'
      AND column_name NOT LIKE '%\_cost\_picos' AND column_name NOT LIKE '%\_savings\_nanos';
    EXECUTE format(
        'CREATE TABLE rollups_monthly ('
        'project text COLLATE "C" NOT NULL, month timestamptz NOT NULL, '
        'provider text COLLATE "C" NOT NULL, model text COLLATE "C" NOT NULL, '
        'service_tier text COLLATE "C" NOT NULL, batch boolean NOT NULL, '
        'reasoning_effort text COLLATE "C" NOT NULL DEFAULT '''', '
        'tags jsonb NOT NULL DEFAULT ''{}'', %s, '
        'CONSTRAINT rollups_monthly_pkey PRIMARY KEY '
        '(month, project, provider, model, service_tier, batch, reasoning_effort, tags))',
        definitions);
    EXECUTE format(
        'INSERT INTO rollups_monthly (project, month, provider, model, service_tier, batch, '
        'reasoning_effort, tags, %s) '
        'SELECT project, date_trunc(''month'', day, ''UTC''), provider, model, service_tier, '
        'batch, reasoning_effort, tags, %s FROM rollups_daily GROUP BY 1, 2, 3, 4, 5, 6, 7, 8',
        values_list, sums);
    EXECUTE format(
        'CREATE TABLE rollups_project_monthly (project text COLLATE "C" NOT NULL, '
        'month timestamptz NOT NULL, %s, '
        'CONSTRAINT rollups_project_monthly_pkey PRIMARY KEY (month, project))',
        definitions);
    EXECUTE format(
        'INSERT INTO rollups_project_monthly (project, month, %s) '
        'SELECT project, month, %s FROM rollups_monthly GROUP BY 1, 2',
        values_list, sums);
END $$;

-- The events horizon retention last applied: the months before it were dropped, and no
-- writer may create their partitions again (a record that passed the pipeline's horizon
-- check just before retention ran would otherwise bring a removed month back, and a
-- replay whose key was deleted with it would count twice). One row, or none before the
-- first retention run.
CREATE TABLE retention_horizon (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    events_before timestamptz NOT NULL
);

-- As before, and refusing a month before the horizon (a data exception: the store
-- refuses the records of that month, and only those).
CREATE OR REPLACE FUNCTION llm_meter_events_partition(month date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := 'events_' || to_char(first, 'YYYY_MM');
    horizon timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(7236281733370311014);
    SELECT events_before INTO horizon FROM retention_horizon;
    IF horizon IS NOT NULL AND first::timestamp AT TIME ZONE 'UTC' < date_trunc('month', horizon, 'UTC') THEN
        RAISE EXCEPTION 'a record of % is older than the events retention horizon (events before % were removed)',
            to_char(first, 'YYYY-MM'), to_char(horizon AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            USING ERRCODE = 'data_exception';
    END IF;
    IF to_regclass(quote_ident(name)) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            name,
            first::timestamp AT TIME ZONE 'UTC',
            (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    END IF;
END $$;
