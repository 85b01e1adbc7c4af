//! llm-meter: meters LLM API usage and turns it into exact money.
//!
//! See ARCHITECTURE.md for a map of the modules and the invariants they keep.

pub mod api;
pub mod auth;
pub mod budget;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod duration_text;
pub mod ingest;
pub mod metrics;
pub mod money;
pub mod otlp;
pub mod prepare;
pub mod pricesync;
pub mod pricing;
pub mod providers;
pub mod report;
pub mod retention;
pub mod store;
pub mod usage;
pub mod webhook;
