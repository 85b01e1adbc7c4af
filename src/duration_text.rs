//! Durations written as text in the config: `"250ms"`, `"10s"`, `"1h"`.
//!
//! Used with `#[serde(with = "crate::duration_text")]` by every module that has a
//! duration setting, so none of them needs the config module for it.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map_err(|error| serde::de::Error::custom(format!("{text:?} is not a duration: {error}")))
}
