-- Scale (issue 18), continued.
--
-- Monthly rollups: the same sums by UTC month, written in the same transaction as the
-- hourly and daily ones, so a month is one row per group instead of ~30 (a year by month
-- and project reads 12 rows per group, not 365). Filled from the daily rows.
CREATE TABLE rollups_monthly (LIKE rollups_daily INCLUDING DEFAULTS);
ALTER TABLE rollups_monthly RENAME COLUMN day TO month;
ALTER TABLE rollups_monthly ADD CONSTRAINT rollups_monthly_pkey
    PRIMARY KEY (month, project, provider, model, service_tier, batch, reasoning_effort, tags);

DO $$
DECLARE
    values_list text;
    sums text;
BEGIN
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),
           string_agg(format('sum(%I)', column_name), ', ' ORDER BY ordinal_position)
    INTO values_list, sums
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'rollups_daily'
      AND data_type = 'bigint';
    EXECUTE format(
        'INSERT INTO rollups_monthly (project, month, provider, model, service_tier, batch, '
        'reasoning_effort, tags, %s) '
        'SELECT project, date_trunc(''month'', day, ''UTC''), provider, model, service_tier, '
        'batch, reasoning_effort, tags, %s FROM rollups_daily GROUP BY 1, 2, 3, 4, 5, 6, 7, 8',
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
