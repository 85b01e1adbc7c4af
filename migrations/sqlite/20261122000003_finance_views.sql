-- Views for SQL readers, as on Postgres: spend per UTC day and per UTC month, per project,
-- provider and model, summed from the daily rollups. Times are Unix seconds like every
-- time column here; SQLite has no decimal type, so `*_usd` are exact decimal text made
-- from the integer nano-dollar sums (`cost_nanos` is there too).

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
           || printf('%d.%09d', abs(sum(batch_savings_nanos)) / 1000000000, abs(sum(batch_savings_nanos)) % 1000000000) AS batch_savings_usd
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
           || printf('%d.%09d', abs(sum(batch_savings_nanos)) / 1000000000, abs(sum(batch_savings_nanos)) % 1000000000) AS batch_savings_usd
FROM rollups_daily
GROUP BY 1, project, provider, model;
