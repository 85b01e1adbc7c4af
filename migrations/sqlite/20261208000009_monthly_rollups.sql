-- Scale (issue 18), continued.
--
-- Monthly rollups: the same groups by UTC month (`month` is the Unix second of its first
-- midnight), written in the same transaction as the hourly and daily ones, so a month is
-- one row per group instead of ~30; and each project's monthly totals (every provider,
-- model, tier and tag together), which spend by project and month and a project's budget
-- read when they ask nothing finer. Both keep the spend sums only (request counts, bucket
-- counts, cost, list and reported cost): the per-bucket cost shares (pico-dollars, which
-- would pass 2^63 at $9.2M of one token type in a project's month) and the savings are
-- read from the daily rows. Both are filled from the daily rows.
CREATE TABLE rollups_monthly (
    project                   TEXT    NOT NULL,
    month                     INTEGER NOT NULL,
    provider                  TEXT    NOT NULL,
    model                     TEXT    NOT NULL,
    service_tier              TEXT    NOT NULL,
    batch                     INTEGER NOT NULL,
    reasoning_effort          TEXT    NOT NULL DEFAULT '',
    tags                      TEXT    NOT NULL DEFAULT '{}',
    requests                  INTEGER NOT NULL DEFAULT 0,
    unpriced_requests         INTEGER NOT NULL DEFAULT 0,
    input                     INTEGER NOT NULL DEFAULT 0,
    cached_input              INTEGER NOT NULL DEFAULT 0,
    cache_write_5m            INTEGER NOT NULL DEFAULT 0,
    cache_write_1h            INTEGER NOT NULL DEFAULT 0,
    output                    INTEGER NOT NULL DEFAULT 0,
    reasoning                 INTEGER NOT NULL DEFAULT 0,
    cost_nanos                INTEGER NOT NULL DEFAULT 0,
    list_cost_nanos           INTEGER NOT NULL DEFAULT 0,
    reported_cost_nanos       INTEGER NOT NULL DEFAULT 0,
    partial_requests          INTEGER NOT NULL DEFAULT 0,
    reported_requests         INTEGER NOT NULL DEFAULT 0,
    audio_input               INTEGER NOT NULL DEFAULT 0,
    cached_audio_input        INTEGER NOT NULL DEFAULT 0,
    audio_output              INTEGER NOT NULL DEFAULT 0,
    image_input               INTEGER NOT NULL DEFAULT 0,
    image_output              INTEGER NOT NULL DEFAULT 0,
    web_search                INTEGER NOT NULL DEFAULT 0,
    code_interpreter          INTEGER NOT NULL DEFAULT 0,
    file_search               INTEGER NOT NULL DEFAULT 0,
    image_generation          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, project, provider, model, service_tier, batch, reasoning_effort, tags)
) WITHOUT ROWID;

INSERT INTO rollups_monthly (project, month, provider, model, service_tier, batch, reasoning_effort, tags,
    requests, unpriced_requests, input, cached_input, cache_write_5m, cache_write_1h, output, reasoning, cost_nanos, list_cost_nanos, reported_cost_nanos, partial_requests, reported_requests, audio_input, cached_audio_input, audio_output, image_input, image_output, web_search, code_interpreter, file_search, image_generation)
SELECT project, CAST(strftime('%s', day, 'unixepoch', 'start of month') AS INTEGER), provider, model,
    service_tier, batch, reasoning_effort, tags,
    sum(requests), sum(unpriced_requests), sum(input), sum(cached_input), sum(cache_write_5m), sum(cache_write_1h), sum(output), sum(reasoning), sum(cost_nanos), sum(list_cost_nanos), sum(reported_cost_nanos), sum(partial_requests), sum(reported_requests), sum(audio_input), sum(cached_audio_input), sum(audio_output), sum(image_input), sum(image_output), sum(web_search), sum(code_interpreter), sum(file_search), sum(image_generation)
FROM rollups_daily GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

CREATE TABLE rollups_project_monthly (
    project                   TEXT    NOT NULL,
    month                     INTEGER NOT NULL,
    requests                  INTEGER NOT NULL DEFAULT 0,
    unpriced_requests         INTEGER NOT NULL DEFAULT 0,
    input                     INTEGER NOT NULL DEFAULT 0,
    cached_input              INTEGER NOT NULL DEFAULT 0,
    cache_write_5m            INTEGER NOT NULL DEFAULT 0,
    cache_write_1h            INTEGER NOT NULL DEFAULT 0,
    output                    INTEGER NOT NULL DEFAULT 0,
    reasoning                 INTEGER NOT NULL DEFAULT 0,
    cost_nanos                INTEGER NOT NULL DEFAULT 0,
    list_cost_nanos           INTEGER NOT NULL DEFAULT 0,
    reported_cost_nanos       INTEGER NOT NULL DEFAULT 0,
    partial_requests          INTEGER NOT NULL DEFAULT 0,
    reported_requests         INTEGER NOT NULL DEFAULT 0,
    audio_input               INTEGER NOT NULL DEFAULT 0,
    cached_audio_input        INTEGER NOT NULL DEFAULT 0,
    audio_output              INTEGER NOT NULL DEFAULT 0,
    image_input               INTEGER NOT NULL DEFAULT 0,
    image_output              INTEGER NOT NULL DEFAULT 0,
    web_search                INTEGER NOT NULL DEFAULT 0,
    code_interpreter          INTEGER NOT NULL DEFAULT 0,
    file_search               INTEGER NOT NULL DEFAULT 0,
    image_generation          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, project)
) WITHOUT ROWID;

INSERT INTO rollups_project_monthly (project, month,
    requests, unpriced_requests, input, cached_input, cache_write_5m, cache_write_1h, output, reasoning, cost_nanos, list_cost_nanos, reported_cost_nanos, partial_requests, reported_requests, audio_input, cached_audio_input, audio_output, image_input, image_output, web_search, code_interpreter, file_search, image_generation)
SELECT project, month,
    sum(requests), sum(unpriced_requests), sum(input), sum(cached_input), sum(cache_write_5m), sum(cache_write_1h), sum(output), sum(reasoning), sum(cost_nanos), sum(list_cost_nanos), sum(reported_cost_nanos), sum(partial_requests), sum(reported_requests), sum(audio_input), sum(cached_audio_input), sum(audio_output), sum(image_input), sum(image_output), sum(web_search), sum(code_interpreter), sum(file_search), sum(image_generation)
FROM rollups_monthly GROUP BY 1, 2;

-- As for the other rollups: a sum that would stop being an integer aborts the write.
CREATE TRIGGER rollups_monthly_integer_sums BEFORE UPDATE ON rollups_monthly
WHEN typeof(NEW.requests) <> 'integer'
   OR typeof(NEW.unpriced_requests) <> 'integer'
   OR typeof(NEW.input) <> 'integer'
   OR typeof(NEW.cached_input) <> 'integer'
   OR typeof(NEW.cache_write_5m) <> 'integer'
   OR typeof(NEW.cache_write_1h) <> 'integer'
   OR typeof(NEW.output) <> 'integer'
   OR typeof(NEW.reasoning) <> 'integer'
   OR typeof(NEW.cost_nanos) <> 'integer'
   OR typeof(NEW.list_cost_nanos) <> 'integer'
   OR typeof(NEW.reported_cost_nanos) <> 'integer'
   OR typeof(NEW.partial_requests) <> 'integer'
   OR typeof(NEW.reported_requests) <> 'integer'
   OR typeof(NEW.audio_input) <> 'integer'
   OR typeof(NEW.cached_audio_input) <> 'integer'
   OR typeof(NEW.audio_output) <> 'integer'
   OR typeof(NEW.image_input) <> 'integer'
   OR typeof(NEW.image_output) <> 'integer'
   OR typeof(NEW.web_search) <> 'integer'
   OR typeof(NEW.code_interpreter) <> 'integer'
   OR typeof(NEW.file_search) <> 'integer'
   OR typeof(NEW.image_generation) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'rollup value out of range');
END;

CREATE TRIGGER rollups_project_monthly_integer_sums BEFORE UPDATE ON rollups_project_monthly
WHEN typeof(NEW.requests) <> 'integer'
   OR typeof(NEW.unpriced_requests) <> 'integer'
   OR typeof(NEW.input) <> 'integer'
   OR typeof(NEW.cached_input) <> 'integer'
   OR typeof(NEW.cache_write_5m) <> 'integer'
   OR typeof(NEW.cache_write_1h) <> 'integer'
   OR typeof(NEW.output) <> 'integer'
   OR typeof(NEW.reasoning) <> 'integer'
   OR typeof(NEW.cost_nanos) <> 'integer'
   OR typeof(NEW.list_cost_nanos) <> 'integer'
   OR typeof(NEW.reported_cost_nanos) <> 'integer'
   OR typeof(NEW.partial_requests) <> 'integer'
   OR typeof(NEW.reported_requests) <> 'integer'
   OR typeof(NEW.audio_input) <> 'integer'
   OR typeof(NEW.cached_audio_input) <> 'integer'
   OR typeof(NEW.audio_output) <> 'integer'
   OR typeof(NEW.image_input) <> 'integer'
   OR typeof(NEW.image_output) <> 'integer'
   OR typeof(NEW.web_search) <> 'integer'
   OR typeof(NEW.code_interpreter) <> 'integer'
   OR typeof(NEW.file_search) <> 'integer'
   OR typeof(NEW.image_generation) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'rollup value out of range');
END;

-- The events horizon retention last applied (Unix microseconds, like `events.time`): a
-- write holding a record older than it is refused, so a record that passed the
-- pipeline's horizon check just before retention deleted its period cannot count again.
-- One row, or none before the first retention run.
CREATE TABLE retention_horizon (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    events_before INTEGER NOT NULL
);
