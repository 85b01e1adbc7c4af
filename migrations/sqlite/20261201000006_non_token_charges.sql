-- Usage that is not text tokens (audio and image tokens; web-search, code-interpreter,
-- file-search and image-generation calls; per-request fees), the search context a record
-- asked for, partially priced records, and which records carried a cost of their own.
-- Forward-only. Existing rows get zeros: text-only usage, as it was.

ALTER TABLE events ADD COLUMN audio_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cached_audio_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN audio_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN image_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN image_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN web_search INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN code_interpreter INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN file_search INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN image_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN search_context TEXT;
ALTER TABLE events ADD COLUMN partial_reason TEXT;
ALTER TABLE events ADD COLUMN audio_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cached_audio_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN audio_output_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN image_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN image_output_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN web_search_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN code_interpreter_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN file_search_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN image_generation_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN request_cost_picos INTEGER NOT NULL DEFAULT 0;

ALTER TABLE rollups_hourly ADD COLUMN partial_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN reported_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN audio_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN cached_audio_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN audio_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN image_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN image_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN web_search INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN code_interpreter INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN file_search INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN image_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN audio_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN cached_audio_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN audio_output_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN image_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN image_output_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN web_search_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN code_interpreter_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN file_search_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN image_generation_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_hourly ADD COLUMN request_cost_picos INTEGER NOT NULL DEFAULT 0;

ALTER TABLE rollups_daily ADD COLUMN partial_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN reported_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN audio_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN cached_audio_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN audio_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN image_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN image_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN web_search INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN code_interpreter INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN file_search INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN image_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN audio_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN cached_audio_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN audio_output_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN image_input_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN image_output_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN web_search_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN code_interpreter_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN file_search_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN image_generation_cost_picos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups_daily ADD COLUMN request_cost_picos INTEGER NOT NULL DEFAULT 0;

-- Groups summed before this migration did not count the records with a reported cost:
-- count them from the events, by the rollups' own keys (the model is the sheet's id when
-- the name resolved, as the rollups have it), then the days from their hours.
UPDATE rollups_hourly
SET reported_requests = (
    SELECT count(*) FROM events e
    WHERE e.reported_cost_nanos IS NOT NULL
      AND e.project = rollups_hourly.project
      AND e.time >= rollups_hourly.hour * 1000000
      AND e.time < (rollups_hourly.hour + 3600) * 1000000
      AND e.provider = rollups_hourly.provider
      AND COALESCE(e.resolved_model, e.model) = rollups_hourly.model
      AND e.service_tier = rollups_hourly.service_tier
      AND e.batch = rollups_hourly.batch
      AND COALESCE(e.reasoning_effort, '') = rollups_hourly.reasoning_effort
      AND e.tags = rollups_hourly.tags)
WHERE reported_cost_nanos <> 0;
UPDATE rollups_daily
SET reported_requests = (
    SELECT COALESCE(sum(h.reported_requests), 0) FROM rollups_hourly h
    WHERE h.project = rollups_daily.project
      AND h.hour >= rollups_daily.day AND h.hour < rollups_daily.day + 86400
      AND h.provider = rollups_daily.provider
      AND h.model = rollups_daily.model
      AND h.service_tier = rollups_daily.service_tier
      AND h.batch = rollups_daily.batch
      AND h.reasoning_effort = rollups_daily.reasoning_effort
      AND h.tags = rollups_daily.tags)
WHERE reported_cost_nanos <> 0;

-- The finance views gain partially priced requests and the reported cost.
DROP VIEW finance_spend_daily;
DROP VIEW finance_spend_monthly;

CREATE VIEW finance_spend_daily AS
SELECT day AS day,
       project,
       provider,
       model,
       sum(requests)          AS requests,
       sum(unpriced_requests) AS unpriced_requests,
       sum(input)             AS input_tokens,
       sum(cached_input)      AS cached_input_tokens,
       sum(cache_write_5m + cache_write_1h) AS cache_write_tokens,
       sum(output)            AS output_tokens,
       sum(reasoning)         AS reasoning_tokens,
       sum(cost_nanos)        AS cost_nanos,
       CASE WHEN sum(cost_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(cost_nanos)) / 1000000000, abs(sum(cost_nanos)) % 1000000000) AS cost_usd,
       CASE WHEN sum(list_cost_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(list_cost_nanos)) / 1000000000, abs(sum(list_cost_nanos)) % 1000000000) AS list_cost_usd,
       CASE WHEN sum(cache_savings_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(cache_savings_nanos)) / 1000000000, abs(sum(cache_savings_nanos)) % 1000000000) AS cache_savings_usd,
       CASE WHEN sum(batch_savings_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(batch_savings_nanos)) / 1000000000, abs(sum(batch_savings_nanos)) % 1000000000) AS batch_savings_usd,
       sum(partial_requests)  AS partial_requests,
       sum(reported_requests) AS reported_requests,
       CASE WHEN sum(reported_cost_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(reported_cost_nanos)) / 1000000000, abs(sum(reported_cost_nanos)) % 1000000000) AS reported_cost_usd
FROM rollups_daily
GROUP BY day, project, provider, model;

CREATE VIEW finance_spend_monthly AS
SELECT CAST(strftime('%s', day, 'unixepoch', 'start of month') AS INTEGER) AS month,
       project,
       provider,
       model,
       sum(requests)          AS requests,
       sum(unpriced_requests) AS unpriced_requests,
       sum(input)             AS input_tokens,
       sum(cached_input)      AS cached_input_tokens,
       sum(cache_write_5m + cache_write_1h) AS cache_write_tokens,
       sum(output)            AS output_tokens,
       sum(reasoning)         AS reasoning_tokens,
       sum(cost_nanos)        AS cost_nanos,
       CASE WHEN sum(cost_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(cost_nanos)) / 1000000000, abs(sum(cost_nanos)) % 1000000000) AS cost_usd,
       CASE WHEN sum(list_cost_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(list_cost_nanos)) / 1000000000, abs(sum(list_cost_nanos)) % 1000000000) AS list_cost_usd,
       CASE WHEN sum(cache_savings_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(cache_savings_nanos)) / 1000000000, abs(sum(cache_savings_nanos)) % 1000000000) AS cache_savings_usd,
       CASE WHEN sum(batch_savings_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(batch_savings_nanos)) / 1000000000, abs(sum(batch_savings_nanos)) % 1000000000) AS batch_savings_usd,
       sum(partial_requests)  AS partial_requests,
       sum(reported_requests) AS reported_requests,
       CASE WHEN sum(reported_cost_nanos) < 0 THEN '-' ELSE '' END
           || printf('%d.%09d', abs(sum(reported_cost_nanos)) / 1000000000, abs(sum(reported_cost_nanos)) % 1000000000) AS reported_cost_usd
FROM rollups_daily
GROUP BY 1, project, provider, model;
