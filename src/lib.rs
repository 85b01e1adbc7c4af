//! llm-meter: meters LLM API usage and turns it into exact money.
//!
//! See ARCHITECTURE.md for a map of the modules and the invariants they keep.

pub mod cli;
pub mod commands;
pub mod config;
pub mod prepare;
pub mod pricing;
pub mod usage;
