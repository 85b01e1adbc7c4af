-- The same logical schema as migrations/postgres, in SQLite's types.
-- Times are integers: Unix microseconds for instants (`time`, `received_at`,
-- `ingested_at`, `updated_at`), Unix seconds for rollup hours. Money is integer, as in
-- Postgres: nano-dollars for costs, pico-dollars for per-bucket shares. Booleans are 0/1.
-- Tags are JSON text written with sorted keys, so equal tags are equal text.
-- Forward-only: never edit an applied migration, add a new one.

CREATE TABLE events (
    project                   TEXT    NOT NULL,
    id                        TEXT    NOT NULL,
    time                      INTEGER NOT NULL,
    provider                  TEXT    NOT NULL,
    model                     TEXT    NOT NULL,
    resolved_model            TEXT,
    input                     INTEGER NOT NULL,
    cached_input              INTEGER NOT NULL,
    cache_write_5m            INTEGER NOT NULL,
    cache_write_1h            INTEGER NOT NULL,
    output                    INTEGER NOT NULL,
    reasoning                 INTEGER NOT NULL,
    batch                     INTEGER NOT NULL,
    service_tier              TEXT    NOT NULL,
    reasoning_effort          TEXT,
    tags                      TEXT    NOT NULL DEFAULT '{}',
    user_id                   TEXT,
    cost_nanos                INTEGER,
    list_cost_nanos           INTEGER,
    price_ref                 TEXT,
    unpriced_reason           TEXT,
    reported_cost_nanos       INTEGER,
    input_cost_picos          INTEGER NOT NULL DEFAULT 0,
    cached_input_cost_picos   INTEGER NOT NULL DEFAULT 0,
    cache_write_5m_cost_picos INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_cost_picos INTEGER NOT NULL DEFAULT 0,
    output_cost_picos         INTEGER NOT NULL DEFAULT 0,
    reasoning_cost_picos      INTEGER NOT NULL DEFAULT 0,
    cache_savings_nanos       INTEGER NOT NULL DEFAULT 0,
    batch_savings_nanos       INTEGER NOT NULL DEFAULT 0,
    ingested_at               INTEGER NOT NULL,
    source                    TEXT    NOT NULL,
    PRIMARY KEY (project, id)
);

CREATE INDEX events_time ON events (time);
CREATE INDEX events_unpriced ON events (provider, model) WHERE cost_nanos IS NULL;

CREATE TABLE rollups_hourly (
    project                   TEXT    NOT NULL,
    hour                      INTEGER NOT NULL,
    provider                  TEXT    NOT NULL,
    model                     TEXT    NOT NULL,
    service_tier              TEXT    NOT NULL,
    batch                     INTEGER NOT NULL,
    reasoning_effort          TEXT    NOT NULL DEFAULT '',
    tags                      TEXT    NOT NULL DEFAULT '{}',
    requests                  INTEGER NOT NULL,
    unpriced_requests         INTEGER NOT NULL,
    input                     INTEGER NOT NULL,
    cached_input              INTEGER NOT NULL,
    cache_write_5m            INTEGER NOT NULL,
    cache_write_1h            INTEGER NOT NULL,
    output                    INTEGER NOT NULL,
    reasoning                 INTEGER NOT NULL,
    cost_nanos                INTEGER NOT NULL,
    list_cost_nanos           INTEGER NOT NULL,
    reported_cost_nanos       INTEGER NOT NULL,
    input_cost_picos          INTEGER NOT NULL,
    cached_input_cost_picos   INTEGER NOT NULL,
    cache_write_5m_cost_picos INTEGER NOT NULL,
    cache_write_1h_cost_picos INTEGER NOT NULL,
    output_cost_picos         INTEGER NOT NULL,
    reasoning_cost_picos      INTEGER NOT NULL,
    cache_savings_nanos       INTEGER NOT NULL,
    batch_savings_nanos       INTEGER NOT NULL,
    PRIMARY KEY (project, hour, provider, model, service_tier, batch, reasoning_effort, tags)
) WITHOUT ROWID;

CREATE INDEX rollups_hourly_hour ON rollups_hourly (hour);

-- The same sums by UTC day (Unix seconds of its midnight), written with the hourly ones.
-- Rollups are WITHOUT ROWID: stored in key order, so a range of days is one contiguous read.
CREATE TABLE rollups_daily (
    project                   TEXT    NOT NULL,
    day                       INTEGER NOT NULL,
    provider                  TEXT    NOT NULL,
    model                     TEXT    NOT NULL,
    service_tier              TEXT    NOT NULL,
    batch                     INTEGER NOT NULL,
    reasoning_effort          TEXT    NOT NULL DEFAULT '',
    tags                      TEXT    NOT NULL DEFAULT '{}',
    requests                  INTEGER NOT NULL,
    unpriced_requests         INTEGER NOT NULL,
    input                     INTEGER NOT NULL,
    cached_input              INTEGER NOT NULL,
    cache_write_5m            INTEGER NOT NULL,
    cache_write_1h            INTEGER NOT NULL,
    output                    INTEGER NOT NULL,
    reasoning                 INTEGER NOT NULL,
    cost_nanos                INTEGER NOT NULL,
    list_cost_nanos           INTEGER NOT NULL,
    reported_cost_nanos       INTEGER NOT NULL,
    input_cost_picos          INTEGER NOT NULL,
    cached_input_cost_picos   INTEGER NOT NULL,
    cache_write_5m_cost_picos INTEGER NOT NULL,
    cache_write_1h_cost_picos INTEGER NOT NULL,
    output_cost_picos         INTEGER NOT NULL,
    reasoning_cost_picos      INTEGER NOT NULL,
    cache_savings_nanos       INTEGER NOT NULL,
    batch_savings_nanos       INTEGER NOT NULL,
    PRIMARY KEY (day, project, provider, model, service_tier, batch, reasoning_effort, tags)
) WITHOUT ROWID;

CREATE TABLE dead_letters (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    line        TEXT    NOT NULL
);

CREATE INDEX dead_letters_received_at ON dead_letters (received_at);

CREATE TABLE collector_checkpoints (
    collector   TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    "offset"    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (collector, fingerprint)
);

CREATE TABLE reprice_audit (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    at               INTEGER NOT NULL,
    range_from       INTEGER NOT NULL,
    range_to         INTEGER NOT NULL,
    project          TEXT,
    records_examined INTEGER NOT NULL,
    records_changed  INTEGER NOT NULL,
    newly_priced     INTEGER NOT NULL,
    newly_unpriced   INTEGER NOT NULL,
    old_total_nanos  INTEGER NOT NULL,
    new_total_nanos  INTEGER NOT NULL,
    actor            TEXT    NOT NULL
);
