-- Views for SQL readers: the Grafana finance dashboard, a BI tool, psql. Spend per UTC day
-- and per UTC month (billing months, as provider invoices count them), per project,
-- provider and model, summed from the daily rollups. Money is exact: `*_usd` are numeric
-- (nano-dollar sums times 1e-9, a multiplication, so no digit is rounded away) and the
-- `*_nanos` integers they come from are there too. Cache savings are negative where cache
-- writes cost more than the reads saved.

CREATE VIEW finance_spend_daily AS
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
       sum(batch_savings_nanos) * 0.000000001 AS batch_savings_usd
FROM rollups_daily
GROUP BY day, project, provider, model;

CREATE VIEW finance_spend_monthly AS
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
       sum(batch_savings_nanos) * 0.000000001 AS batch_savings_usd
FROM rollups_daily
GROUP BY 1, project, provider, model;
