-- Usage events, hourly rollups, the dead-letter table and collector checkpoints.
-- Forward-only: never edit an applied migration, add a new one.

-- One lean row per usage record (no copied JSON bodies). (project, id) is the idempotency
-- key: a record is counted once, ever. `project` leads every key so the table can later be
-- distributed by project (Citus) without changing a constraint.
-- Keys use the "C" collation: ids are opaque byte strings, byte order is the order the
-- writers sort them in (so concurrent writers lock in index order), and it is much
-- cheaper to compare than a linguistic collation.
CREATE TABLE events (
    project          text COLLATE "C" NOT NULL,
    id               text COLLATE "C" NOT NULL,
    time             timestamptz NOT NULL,
    provider         text        NOT NULL,
    model            text        NOT NULL,          -- as the record wrote it
    resolved_model   text,                          -- the pricing sheet's model id, NULL if unresolved
    input            bigint      NOT NULL,
    cached_input     bigint      NOT NULL,
    cache_write_5m   bigint      NOT NULL,
    cache_write_1h   bigint      NOT NULL,
    output           bigint      NOT NULL,
    reasoning        bigint      NOT NULL,
    batch            boolean     NOT NULL,
    service_tier     text        NOT NULL,
    reasoning_effort text,
    tags             jsonb       NOT NULL DEFAULT '{}',
    user_id          text,
    -- Money is integer: nano-dollars (1e-9 USD, the unit a record's cost is rounded to),
    -- so sums are exact and cheap, and both backends store the same numbers.
    cost_nanos       bigint,                        -- NULL: unpriced (see unpriced_reason)
    list_cost_nanos  bigint,
    price_ref        text,
    unpriced_reason  text,
    reported_cost_nanos bigint,                     -- what the source said it cost, if anything
    -- Each bucket's share of the cost (zero when unpriced) in pico-dollars (1e-12 USD):
    -- finer than the record's rounding, for spend by token type and for `reprice`.
    input_cost_picos          bigint NOT NULL DEFAULT 0,
    cached_input_cost_picos   bigint NOT NULL DEFAULT 0,
    cache_write_5m_cost_picos bigint NOT NULL DEFAULT 0,
    cache_write_1h_cost_picos bigint NOT NULL DEFAULT 0,
    output_cost_picos         bigint NOT NULL DEFAULT 0,
    reasoning_cost_picos      bigint NOT NULL DEFAULT 0,
    -- What prompt caching and the batch/flex discount saved on the record (nano-dollars;
    -- cache savings are negative when write premiums exceed read discounts).
    cache_savings_nanos       bigint NOT NULL DEFAULT 0,
    batch_savings_nanos       bigint NOT NULL DEFAULT 0,
    ingested_at      timestamptz NOT NULL,
    source           text        NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (project, id)
);

-- Events arrive roughly in time order: a BRIN index finds time ranges (partial hours,
-- reprice) for a fraction of a B-tree's write cost.
CREATE INDEX events_time ON events USING brin (time);
-- `GET /v1/unpriced` and `reprice` look for unpriced records only.
CREATE INDEX events_unpriced ON events (provider, model) WHERE cost_nanos IS NULL;

-- Hourly rollups, updated in the same transaction as the events they count and only for
-- events actually inserted. Spend queries and dashboards read these, not raw events.
-- `model` is the sheet's model id when the record resolved to one, else the name as written.
-- Money as in `events`: nano-dollars, bucket shares in pico-dollars.
CREATE TABLE rollups_hourly (
    project               text COLLATE "C" NOT NULL,
    hour                  timestamptz NOT NULL,
    provider              text COLLATE "C" NOT NULL,
    model                 text COLLATE "C" NOT NULL,
    service_tier          text COLLATE "C" NOT NULL,
    batch                 boolean     NOT NULL,
    reasoning_effort      text COLLATE "C" NOT NULL DEFAULT '',
    tags                  jsonb       NOT NULL DEFAULT '{}',
    requests              bigint      NOT NULL,
    unpriced_requests     bigint      NOT NULL,
    input                 bigint      NOT NULL,
    cached_input          bigint      NOT NULL,
    cache_write_5m        bigint      NOT NULL,
    cache_write_1h        bigint      NOT NULL,
    output                bigint      NOT NULL,
    reasoning             bigint      NOT NULL,
    cost_nanos                bigint NOT NULL,
    list_cost_nanos           bigint NOT NULL,
    reported_cost_nanos       bigint NOT NULL,
    input_cost_picos          bigint NOT NULL,
    cached_input_cost_picos   bigint NOT NULL,
    cache_write_5m_cost_picos bigint NOT NULL,
    cache_write_1h_cost_picos bigint NOT NULL,
    output_cost_picos         bigint NOT NULL,
    reasoning_cost_picos      bigint NOT NULL,
    cache_savings_nanos       bigint NOT NULL,
    batch_savings_nanos       bigint NOT NULL,
    CONSTRAINT rollups_hourly_pkey
        PRIMARY KEY (project, hour, provider, model, service_tier, batch, reasoning_effort, tags)
);

CREATE INDEX rollups_hourly_hour ON rollups_hourly (hour);

-- The same sums by UTC day, written with the hourly ones: a month-long query reads ~30
-- rows per group instead of ~720. `day` is the UTC midnight starting it.
CREATE TABLE rollups_daily (
    project               text COLLATE "C" NOT NULL,
    day                   timestamptz NOT NULL,
    provider              text COLLATE "C" NOT NULL,
    model                 text COLLATE "C" NOT NULL,
    service_tier          text COLLATE "C" NOT NULL,
    batch                 boolean     NOT NULL,
    reasoning_effort      text COLLATE "C" NOT NULL DEFAULT '',
    tags                  jsonb       NOT NULL DEFAULT '{}',
    requests              bigint      NOT NULL,
    unpriced_requests     bigint      NOT NULL,
    input                 bigint      NOT NULL,
    cached_input          bigint      NOT NULL,
    cache_write_5m        bigint      NOT NULL,
    cache_write_1h        bigint      NOT NULL,
    output                bigint      NOT NULL,
    reasoning             bigint      NOT NULL,
    cost_nanos                bigint NOT NULL,
    list_cost_nanos           bigint NOT NULL,
    reported_cost_nanos       bigint NOT NULL,
    input_cost_picos          bigint NOT NULL,
    cached_input_cost_picos   bigint NOT NULL,
    cache_write_5m_cost_picos bigint NOT NULL,
    cache_write_1h_cost_picos bigint NOT NULL,
    output_cost_picos         bigint NOT NULL,
    reasoning_cost_picos      bigint NOT NULL,
    cache_savings_nanos       bigint NOT NULL,
    batch_savings_nanos       bigint NOT NULL,
    CONSTRAINT rollups_daily_pkey
        PRIMARY KEY (day, project, provider, model, service_tier, batch, reasoning_effort, tags)
);

-- Lines and records that could not be used, with the reason. The line is truncated.
CREATE TABLE dead_letters (
    seq         bigserial   PRIMARY KEY,
    received_at timestamptz NOT NULL,
    source      text        NOT NULL,
    code        text        NOT NULL,
    reason      text        NOT NULL,
    line        text        NOT NULL
);

CREATE INDEX dead_letters_received_at ON dead_letters (received_at);

-- How far each collector has read each file, written in the same transaction as the
-- records read up to that offset. Files are identified by a fingerprint of their start.
CREATE TABLE collector_checkpoints (
    collector   text        NOT NULL,
    fingerprint text        NOT NULL,
    path        text        NOT NULL,
    "offset"    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT collector_checkpoints_pkey PRIMARY KEY (collector, fingerprint)
);

-- Every `reprice` that changed stored costs: when, over what, and what it changed.
CREATE TABLE reprice_audit (
    seq              bigserial   PRIMARY KEY,
    at               timestamptz NOT NULL,
    range_from       timestamptz NOT NULL,
    range_to         timestamptz NOT NULL,
    project          text,
    records_examined bigint      NOT NULL,
    records_changed  bigint      NOT NULL,
    newly_priced     bigint      NOT NULL,
    newly_unpriced   bigint      NOT NULL,
    old_total_nanos  bigint      NOT NULL,
    new_total_nanos  bigint      NOT NULL,
    actor            text        NOT NULL
);
