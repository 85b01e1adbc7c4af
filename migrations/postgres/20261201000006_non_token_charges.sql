-- Usage that is not text tokens (audio and image tokens; web-search, code-interpreter,
-- file-search and image-generation calls; per-request fees), the search context a record
-- asked for, partially priced records, and which records carried a cost of their own.
-- Forward-only. Existing rows get zeros: text-only usage, as it was.

-- On events: the new counts, their cost shares (pico-dollars), the search context and,
-- for a record priced for only part of its usage, what was left out.
ALTER TABLE events
    ADD COLUMN audio_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN cached_audio_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_output bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_output bigint NOT NULL DEFAULT 0,
    ADD COLUMN web_search bigint NOT NULL DEFAULT 0,
    ADD COLUMN code_interpreter bigint NOT NULL DEFAULT 0,
    ADD COLUMN file_search bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_generation bigint NOT NULL DEFAULT 0,
    ADD COLUMN search_context text,
    ADD COLUMN partial_reason text,
    ADD COLUMN audio_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN cached_audio_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_output_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_output_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN web_search_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN code_interpreter_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN file_search_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_generation_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN request_cost_picos bigint NOT NULL DEFAULT 0;

ALTER TABLE rollups_hourly
    ADD COLUMN partial_requests bigint NOT NULL DEFAULT 0,
    ADD COLUMN reported_requests bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN cached_audio_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_output bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_output bigint NOT NULL DEFAULT 0,
    ADD COLUMN web_search bigint NOT NULL DEFAULT 0,
    ADD COLUMN code_interpreter bigint NOT NULL DEFAULT 0,
    ADD COLUMN file_search bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_generation bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN cached_audio_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_output_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_output_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN web_search_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN code_interpreter_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN file_search_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_generation_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN request_cost_picos bigint NOT NULL DEFAULT 0;

ALTER TABLE rollups_daily
    ADD COLUMN partial_requests bigint NOT NULL DEFAULT 0,
    ADD COLUMN reported_requests bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN cached_audio_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_output bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_input bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_output bigint NOT NULL DEFAULT 0,
    ADD COLUMN web_search bigint NOT NULL DEFAULT 0,
    ADD COLUMN code_interpreter bigint NOT NULL DEFAULT 0,
    ADD COLUMN file_search bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_generation bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN cached_audio_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN audio_output_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_input_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_output_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN web_search_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN code_interpreter_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN file_search_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN image_generation_cost_picos bigint NOT NULL DEFAULT 0,
    ADD COLUMN request_cost_picos bigint NOT NULL DEFAULT 0;

-- Groups summed before this migration did not count the records with a reported cost:
-- count them from the events, by the rollups' own keys (the model is the sheet's id when
-- the name resolved, as the rollups have it), then the days from their hours.
UPDATE rollups_hourly r
SET reported_requests = e.n
FROM (SELECT project,
             date_trunc('hour', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
             provider,
             COALESCE(resolved_model, model) AS model,
             service_tier,
             batch,
             COALESCE(reasoning_effort, '') AS reasoning_effort,
             tags,
             count(*) AS n
      FROM events
      WHERE reported_cost_nanos IS NOT NULL
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) e
WHERE r.project = e.project AND r.hour = e.hour AND r.provider = e.provider
  AND r.model = e.model AND r.service_tier = e.service_tier AND r.batch = e.batch
  AND r.reasoning_effort = e.reasoning_effort AND r.tags = e.tags;
UPDATE rollups_daily d
SET reported_requests = h.n
FROM (SELECT project,
             date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day,
             provider, model, service_tier, batch, reasoning_effort, tags,
             sum(reported_requests) AS n
      FROM rollups_hourly
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) h
WHERE d.project = h.project AND d.day = h.day AND d.provider = h.provider
  AND d.model = h.model AND d.service_tier = h.service_tier AND d.batch = h.batch
  AND d.reasoning_effort = h.reasoning_effort AND d.tags = h.tags;

-- The finance views gain partially priced requests and the reported cost.
CREATE OR REPLACE VIEW finance_spend_daily AS
SELECT day,
       project,
       provider,
       model,
       sum(requests)::bigint          AS requests,
       sum(unpriced_requests)::bigint AS unpriced_requests,
       sum(input)::bigint             AS input_tokens,
       sum(cached_input)::bigint      AS cached_input_tokens,
       sum(cache_write_5m + cache_write_1h)::bigint AS cache_write_tokens,
       sum(output)::bigint            AS output_tokens,
       sum(reasoning)::bigint         AS reasoning_tokens,
       sum(cost_nanos)                AS cost_nanos,
       sum(cost_nanos) * 0.000000001          AS cost_usd,
       sum(list_cost_nanos) * 0.000000001     AS list_cost_usd,
       sum(cache_savings_nanos) * 0.000000001 AS cache_savings_usd,
       sum(batch_savings_nanos) * 0.000000001 AS batch_savings_usd,
       sum(partial_requests)::bigint  AS partial_requests,
       sum(reported_requests)::bigint AS reported_requests,
       sum(reported_cost_nanos) * 0.000000001 AS reported_cost_usd
FROM rollups_daily
GROUP BY day, project, provider, model;

-- The finance views gain partially priced requests and the reported cost.
CREATE OR REPLACE VIEW finance_spend_monthly AS
SELECT date_trunc('month', day, 'UTC') AS month,
       project,
       provider,
       model,
       sum(requests)::bigint          AS requests,
       sum(unpriced_requests)::bigint AS unpriced_requests,
       sum(input)::bigint             AS input_tokens,
       sum(cached_input)::bigint      AS cached_input_tokens,
       sum(cache_write_5m + cache_write_1h)::bigint AS cache_write_tokens,
       sum(output)::bigint            AS output_tokens,
       sum(reasoning)::bigint         AS reasoning_tokens,
       sum(cost_nanos)                AS cost_nanos,
       sum(cost_nanos) * 0.000000001          AS cost_usd,
       sum(list_cost_nanos) * 0.000000001     AS list_cost_usd,
       sum(cache_savings_nanos) * 0.000000001 AS cache_savings_usd,
       sum(batch_savings_nanos) * 0.000000001 AS batch_savings_usd,
       sum(partial_requests)::bigint  AS partial_requests,
       sum(reported_requests)::bigint AS reported_requests,
       sum(reported_cost_nanos) * 0.000000001 AS reported_cost_usd
FROM rollups_daily
GROUP BY 1, project, provider, model;
