-- Containment (issue 17).
--
-- SQLite turns an integer sum that passes 2^63 - 1 into a REAL: a rollup value would
-- silently become an approximate float, and every exact query over it would fail. These
-- triggers abort such an update instead; the pipeline then refuses the record that
-- caused it (dead-lettered with the reason) and writes the rest.

CREATE TRIGGER rollups_hourly_integer_sums BEFORE UPDATE ON rollups_hourly
WHEN typeof(NEW.requests) <> 'integer'
   OR typeof(NEW.unpriced_requests) <> 'integer'
   OR typeof(NEW.partial_requests) <> 'integer'
   OR typeof(NEW.reported_requests) <> 'integer'
   OR typeof(NEW.input) <> 'integer'
   OR typeof(NEW.cached_input) <> 'integer'
   OR typeof(NEW.cache_write_5m) <> 'integer'
   OR typeof(NEW.cache_write_1h) <> 'integer'
   OR typeof(NEW.output) <> 'integer'
   OR typeof(NEW.reasoning) <> 'integer'
   OR typeof(NEW.audio_input) <> 'integer'
   OR typeof(NEW.cached_audio_input) <> 'integer'
   OR typeof(NEW.audio_output) <> 'integer'
   OR typeof(NEW.image_input) <> 'integer'
   OR typeof(NEW.image_output) <> 'integer'
   OR typeof(NEW.web_search) <> 'integer'
   OR typeof(NEW.code_interpreter) <> 'integer'
   OR typeof(NEW.file_search) <> 'integer'
   OR typeof(NEW.image_generation) <> 'integer'
   OR typeof(NEW.cost_nanos) <> 'integer'
   OR typeof(NEW.list_cost_nanos) <> 'integer'
   OR typeof(NEW.reported_cost_nanos) <> 'integer'
   OR typeof(NEW.input_cost_picos) <> 'integer'
   OR typeof(NEW.cached_input_cost_picos) <> 'integer'
   OR typeof(NEW.cache_write_5m_cost_picos) <> 'integer'
   OR typeof(NEW.cache_write_1h_cost_picos) <> 'integer'
   OR typeof(NEW.output_cost_picos) <> 'integer'
   OR typeof(NEW.reasoning_cost_picos) <> 'integer'
   OR typeof(NEW.audio_input_cost_picos) <> 'integer'
   OR typeof(NEW.cached_audio_input_cost_picos) <> 'integer'
   OR typeof(NEW.audio_output_cost_picos) <> 'integer'
   OR typeof(NEW.image_input_cost_picos) <> 'integer'
   OR typeof(NEW.image_output_cost_picos) <> 'integer'
   OR typeof(NEW.web_search_cost_picos) <> 'integer'
   OR typeof(NEW.code_interpreter_cost_picos) <> 'integer'
   OR typeof(NEW.file_search_cost_picos) <> 'integer'
   OR typeof(NEW.image_generation_cost_picos) <> 'integer'
   OR typeof(NEW.request_cost_picos) <> 'integer'
   OR typeof(NEW.cache_savings_nanos) <> 'integer'
   OR typeof(NEW.batch_savings_nanos) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'rollup value out of range');
END;

CREATE TRIGGER rollups_daily_integer_sums BEFORE UPDATE ON rollups_daily
WHEN typeof(NEW.requests) <> 'integer'
   OR typeof(NEW.unpriced_requests) <> 'integer'
   OR typeof(NEW.partial_requests) <> 'integer'
   OR typeof(NEW.reported_requests) <> 'integer'
   OR typeof(NEW.input) <> 'integer'
   OR typeof(NEW.cached_input) <> 'integer'
   OR typeof(NEW.cache_write_5m) <> 'integer'
   OR typeof(NEW.cache_write_1h) <> 'integer'
   OR typeof(NEW.output) <> 'integer'
   OR typeof(NEW.reasoning) <> 'integer'
   OR typeof(NEW.audio_input) <> 'integer'
   OR typeof(NEW.cached_audio_input) <> 'integer'
   OR typeof(NEW.audio_output) <> 'integer'
   OR typeof(NEW.image_input) <> 'integer'
   OR typeof(NEW.image_output) <> 'integer'
   OR typeof(NEW.web_search) <> 'integer'
   OR typeof(NEW.code_interpreter) <> 'integer'
   OR typeof(NEW.file_search) <> 'integer'
   OR typeof(NEW.image_generation) <> 'integer'
   OR typeof(NEW.cost_nanos) <> 'integer'
   OR typeof(NEW.list_cost_nanos) <> 'integer'
   OR typeof(NEW.reported_cost_nanos) <> 'integer'
   OR typeof(NEW.input_cost_picos) <> 'integer'
   OR typeof(NEW.cached_input_cost_picos) <> 'integer'
   OR typeof(NEW.cache_write_5m_cost_picos) <> 'integer'
   OR typeof(NEW.cache_write_1h_cost_picos) <> 'integer'
   OR typeof(NEW.output_cost_picos) <> 'integer'
   OR typeof(NEW.reasoning_cost_picos) <> 'integer'
   OR typeof(NEW.audio_input_cost_picos) <> 'integer'
   OR typeof(NEW.cached_audio_input_cost_picos) <> 'integer'
   OR typeof(NEW.audio_output_cost_picos) <> 'integer'
   OR typeof(NEW.image_input_cost_picos) <> 'integer'
   OR typeof(NEW.image_output_cost_picos) <> 'integer'
   OR typeof(NEW.web_search_cost_picos) <> 'integer'
   OR typeof(NEW.code_interpreter_cost_picos) <> 'integer'
   OR typeof(NEW.file_search_cost_picos) <> 'integer'
   OR typeof(NEW.image_generation_cost_picos) <> 'integer'
   OR typeof(NEW.request_cost_picos) <> 'integer'
   OR typeof(NEW.cache_savings_nanos) <> 'integer'
   OR typeof(NEW.batch_savings_nanos) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'rollup value out of range');
END;

-- An alert keeps the project its budget had when it fired, so moving a budget to another
-- project does not show its old alerts to the new project's readers. Alerts fired before
-- this column existed take their budget's project now.
ALTER TABLE alerts ADD COLUMN project text;
UPDATE alerts SET project = (SELECT json_extract(b.spec, '$.project') FROM budgets b WHERE b.id = alerts.budget_id);
