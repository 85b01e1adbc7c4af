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

/// A duration as the config would write it: `"400d"`, `"6h"`, else humantime's words.
pub fn format(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() == 0 && seconds > 0 && seconds.is_multiple_of(86_400) {
        format!("{}d", seconds / 86_400)
    } else if duration.subsec_nanos() == 0 && seconds > 0 && seconds.is_multiple_of(3_600) {
        format!("{}h", seconds / 3_600)
    } else {
        humantime::format_duration(duration).to_string()
    }
}

/// An optional duration: absent (or not given) is `None`.
pub mod optional {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Text(#[serde(deserialize_with = "super::deserialize")] Duration);
        Ok(Option::<Text>::deserialize(deserializer)?.map(|Text(duration)| duration))
    }
}
