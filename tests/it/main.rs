//! One integration-test binary (compiled and linked once), one module per area.

mod architecture;
mod auth;
mod backfill;
mod budgets;
mod catalog;
mod cli_cost;
mod collector;
mod dashboards;
mod e2e_kill;
mod garbage;
mod helpers;
mod hostile;
mod http_ingest;
mod insights;
mod metrics;
mod openapi;
mod parse_errors;
mod pg;
mod price_sync;
mod pricing_rules;
mod properties;
mod reprice;
mod samples;
mod sheets;
mod spend_api;
mod store_contract;
