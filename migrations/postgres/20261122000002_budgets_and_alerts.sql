-- Budgets, the alerts they fired, and the webhook deliveries of those alerts (an outbox).

-- A budget is kept as the JSON it was given (validated by the daemon): both stores read
-- and write it alike, and new fields need no migration.
CREATE TABLE budgets (
    id          text COLLATE "C" PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    spec        jsonb       NOT NULL,
    source      text        NOT NULL,  -- api | config
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- One row per (budget, period, threshold), ever: the unique key is what makes an alert
-- fire once, also when several daemons evaluate the same budget at the same moment.
-- Kept after its budget is deleted (history).
CREATE TABLE alerts (
    id              text COLLATE "C" PRIMARY KEY,
    budget_id       text        NOT NULL,
    budget_name     text        NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    kind            text        NOT NULL,  -- threshold | forecast
    threshold_key   text        NOT NULL,  -- 0.8, usd:450, forecast
    threshold_nanos bigint,
    spend_nanos     bigint      NOT NULL,
    limit_nanos     bigint      NOT NULL,
    forecast_nanos  bigint,
    fired_at        timestamptz NOT NULL,
    CONSTRAINT alerts_once UNIQUE (budget_id, period_start, threshold_key)
);

CREATE INDEX alerts_fired_at ON alerts (fired_at);

-- The outbox: one row per webhook of an alert (or digest), written in the alert's
-- transaction, delivered and retried by any daemon. `id` is the Standard Webhooks
-- `webhook-id`, the same on every attempt. A daemon claims a row by leasing it.
CREATE TABLE deliveries (
    id              text COLLATE "C" PRIMARY KEY,
    alert_id        text,
    url             text        NOT NULL,
    format          text        NOT NULL,  -- json | slack
    secret          text,
    body            text        NOT NULL,
    status          text        NOT NULL,  -- pending | delivered | expired
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    leased_until    timestamptz,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_error      text
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_alert ON deliveries (alert_id);

-- Every attempt, kept: what the target answered and how long it took.
CREATE TABLE delivery_attempts (
    delivery_id text        NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer,
    duration_ms bigint      NOT NULL,
    error       text,
    response    text,
    PRIMARY KEY (delivery_id, attempt)
);

-- Digests sent: one per (digest, period), across replicas.
CREATE TABLE digest_runs (
    digest       text        NOT NULL,
    period_start timestamptz NOT NULL,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (digest, period_start)
);
