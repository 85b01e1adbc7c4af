-- The same logical schema as migrations/postgres, in SQLite's types (times in Unix
-- microseconds, money in nano-dollars).
-- Budgets, the alerts they fired, and the webhook deliveries of those alerts (an outbox).

-- A budget is kept as the JSON it was given (validated by the daemon): both stores read
-- and write it alike, and new fields need no migration.
CREATE TABLE budgets (
    id          TEXT PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE,
    spec        TEXT        NOT NULL,
    source      TEXT        NOT NULL,  -- api | config
    created_at  INTEGER     NOT NULL,
    updated_at  INTEGER     NOT NULL
);

-- One row per (budget, period, threshold), ever: the unique key is what makes an alert
-- fire once, also when several daemons evaluate the same budget at the same moment.
-- Kept after its budget is deleted (history).
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    budget_id       TEXT        NOT NULL,
    budget_name     TEXT        NOT NULL,
    period_start    INTEGER     NOT NULL,
    period_end      INTEGER     NOT NULL,
    kind            TEXT        NOT NULL,  -- threshold | forecast
    threshold_key   TEXT        NOT NULL,  -- 0.8, usd:450, forecast
    threshold_nanos INTEGER,
    spend_nanos     INTEGER      NOT NULL,
    limit_nanos     INTEGER      NOT NULL,
    forecast_nanos  INTEGER,
    fired_at        INTEGER     NOT NULL,
    CONSTRAINT alerts_once UNIQUE (budget_id, period_start, threshold_key)
);

CREATE INDEX alerts_fired_at ON alerts (fired_at);

-- The outbox: one row per webhook of an alert (or digest), written in the alert's
-- transaction, delivered and retried by any daemon. `id` is the Standard Webhooks
-- `webhook-id`, the same on every attempt. A daemon claims a row by leasing it.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        text,
    url             TEXT        NOT NULL,
    format          TEXT        NOT NULL,  -- json | slack
    secret          text,
    body            TEXT        NOT NULL,
    status          TEXT        NOT NULL,  -- pending | delivered | expired
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at INTEGER     NOT NULL,
    leased_until    INTEGER    ,
    expires_at      INTEGER     NOT NULL,
    created_at      INTEGER     NOT NULL,
    delivered_at    INTEGER    ,
    last_error      text
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_alert ON deliveries (alert_id);

-- Every attempt, kept: what the target answered and how long it took.
CREATE TABLE delivery_attempts (
    delivery_id TEXT        NOT NULL,
    attempt     INTEGER     NOT NULL,
    at          INTEGER     NOT NULL,
    status_code integer,
    duration_ms INTEGER      NOT NULL,
    error       text,
    response    text,
    PRIMARY KEY (delivery_id, attempt)
);

-- Digests sent: one per (digest, period), across replicas.
CREATE TABLE digest_runs (
    digest       TEXT        NOT NULL,
    period_start INTEGER     NOT NULL,
    sent_at      INTEGER     NOT NULL,
    PRIMARY KEY (digest, period_start)
);
