//! One integration-test binary (compiled and linked once), one module per area.

mod cli_cost;
mod garbage;
mod helpers;
mod parse_errors;
mod pricing_rules;
mod properties;
mod samples;
mod sheets;
