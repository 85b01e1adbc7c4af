//! Finding a sheet's model from a name as a record wrote it.
//!
//! Names arrive as dated snapshots (`gpt-5.2-2025-12-11`, `claude-sonnet-4-5-20250929`),
//! cloud spellings (`claude-sonnet-4-5@20250929`, `us.anthropic.claude-…-v1:0`),
//! gateway spellings (`openai/gpt-5-2`, `anthropic/claude-sonnet-4.5`, `…:beta`) and
//! resource paths (`models/gemini-2.5-pro`). The lookup tries, in order: the exact name,
//! the name with those decorations removed, a normalised spelling (`.`, `_`, `@` as
//! `-`), the same without a trailing date or `-latest`, and finally regex patterns.

// Names are looked up for every record: foldhash is several times faster than the
// standard SipHash on short keys, and still seeded per process.
use foldhash::HashMap;

use regex::Regex;

#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    /// provider → lower-cased id or alias → model position.
    exact: HashMap<String, HashMap<String, usize>>,
    /// provider → normalised id or alias → model position.
    normalised: HashMap<String, HashMap<String, usize>>,
    pub(crate) patterns: Vec<(String, Regex, usize)>,
}

/// Suffixes gateways append to a model name that do not change its price.
const GATEWAY_SUFFIXES: [&str; 6] = ["beta", "free", "thinking", "extended", "nitro", "floor"];

impl Index {
    /// Adds a name; on a clash with another model returns that model's position.
    pub(crate) fn insert(
        &mut self,
        provider: &str,
        name: &str,
        position: usize,
    ) -> Result<(), usize> {
        let exact = self.exact.entry(provider.to_owned()).or_default();
        if let Some(&other) = exact.get(&name.to_ascii_lowercase())
            && other != position
        {
            return Err(other);
        }
        exact.insert(name.to_ascii_lowercase(), position);
        let normalised = self.normalised.entry(provider.to_owned()).or_default();
        let key = normalise_name(name);
        if let Some(&other) = normalised.get(&key)
            && other != position
        {
            return Err(other);
        }
        normalised.insert(key, position);
        Ok(())
    }

    /// Adds the bare, normalised form of a decorated name (`eu/gpt-4o` → `gpt-4o`), unless
    /// a name already has it.
    pub(crate) fn insert_bare(&mut self, provider: &str, name: &str, position: usize) {
        let bare = normalise_name(strip_decorations(name));
        self.normalised
            .entry(provider.to_owned())
            .or_default()
            .entry(bare)
            .or_insert(position);
    }

    /// Only ids and aliases as written (case aside): no spelling or date tolerance.
    pub(crate) fn exact(&self, provider: &str, name: &str) -> Option<usize> {
        self.exact
            .get(provider)?
            .get(&name.to_ascii_lowercase())
            .copied()
    }

    pub(crate) fn lookup(&self, provider: &str, name: &str) -> Option<usize> {
        let exact = self.exact.get(provider);
        // The common case: an exact, already lower-case name, without allocating.
        if let Some(exact) = exact {
            let hit = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                exact.get(&name.to_ascii_lowercase())
            } else {
                exact.get(name)
            };
            if let Some(&position) = hit {
                return Some(position);
            }
        }
        let cleaned = strip_decorations(name);
        let normalised = self.normalised.get(provider);
        if let Some(normalised) = normalised {
            let key = normalise_name(cleaned);
            if let Some(&position) = normalised.get(&key) {
                return Some(position);
            }
            let mut undated = key.as_str();
            for _ in 0..2 {
                undated = strip_date(undated);
                undated = undated.strip_suffix("-latest").unwrap_or(undated);
                if let Some(&position) = normalised.get(undated) {
                    return Some(position);
                }
            }
        }
        let lower = name.to_ascii_lowercase();
        let cleaned_lower = cleaned.to_ascii_lowercase();
        self.patterns
            .iter()
            .filter(|(p, _, _)| p == provider)
            .find(|(_, regex, _)| regex.is_match(&lower) || regex.is_match(&cleaned_lower))
            .map(|(_, _, position)| *position)
    }
}

/// Splits a gateway suffix (`:beta`, `:free`, `:batch`) off a model name.
pub(crate) fn split_gateway_suffix(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(':') {
        Some((base, suffix))
            if GATEWAY_SUFFIXES.contains(&suffix.to_ascii_lowercase().as_str())
                || suffix.eq_ignore_ascii_case("batch") =>
        {
            (base, Some(suffix))
        }
        _ => (name, None),
    }
}

/// Removes what gateways and clouds wrap around a model id.
fn strip_decorations(name: &str) -> &str {
    let (mut name, _) = split_gateway_suffix(name.trim());
    // `openai/gpt-5.2`, `models/gemini-2.5-pro`, `publishers/google/models/…`.
    if let Some((_, last)) = name.rsplit_once('/') {
        name = last;
    }
    // Bedrock: `us.anthropic.claude-sonnet-4-5-20250929-v1:0`.
    for region in ["us.", "eu.", "apac.", "jp.", "au.", "global."] {
        if let Some(rest) = name.strip_prefix(region) {
            name = rest;
            break;
        }
    }
    for vendor in ["anthropic.", "google.", "openai."] {
        if let Some(rest) = name.strip_prefix(vendor) {
            name = rest;
            break;
        }
    }
    if let Some(position) = name.rfind("-v")
        && name[position + 2..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':')
        && name.len() > position + 2
    {
        name = &name[..position];
    }
    for suffix in ["-thinking"] {
        if let Some(rest) = name.strip_suffix(suffix) {
            name = rest;
        }
    }
    name
}

/// The spelling-insensitive key of a model name: lower case, with `.`, `_` and `@`
/// written as `-` (`claude-sonnet-4.5` = `claude-sonnet-4-5`, `gpt-5-2` = `gpt-5.2`).
pub fn normalise_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '.' | '_' | '@' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Removes one trailing snapshot date: `-2025-12-11`, `-20251211`, `-09-2025`.
pub(crate) fn strip_date(name: &str) -> &str {
    let bytes = name.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let n = bytes.len();
    // -YYYY-MM-DD
    if n > 11
        && bytes[n - 11] == b'-'
        && bytes[n - 6] == b'-'
        && bytes[n - 3] == b'-'
        && digits(n - 10..n - 6)
        && digits(n - 5..n - 3)
        && digits(n - 2..n)
    {
        return &name[..n - 11];
    }
    // -YYYYMMDD
    if n > 9 && bytes[n - 9] == b'-' && digits(n - 8..n) {
        return &name[..n - 9];
    }
    // -MM-YYYY (Gemini previews: `-09-2025`)
    if n > 8
        && bytes[n - 8] == b'-'
        && bytes[n - 5] == b'-'
        && digits(n - 7..n - 5)
        && digits(n - 4..n)
    {
        return &name[..n - 8];
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_dates_of_every_spelling() {
        for (name, expected) in [
            ("gpt-5-2-2025-12-11", "gpt-5-2"),
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            (
                "gemini-2-5-flash-preview-09-2025",
                "gemini-2-5-flash-preview",
            ),
            ("gpt-5-2", "gpt-5-2"),
            ("o3", "o3"),
        ] {
            assert_eq!(strip_date(name), expected, "{name}");
        }
    }

    #[test]
    fn strips_cloud_and_gateway_decorations() {
        for (name, expected) in [
            (
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-sonnet-4-5-20250929",
            ),
            ("anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
            ("openai/gpt-5.2", "gpt-5.2"),
            ("anthropic/claude-sonnet-4.5:beta", "claude-sonnet-4.5"),
            ("publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
            (
                "claude-sonnet-4-5-20250929-thinking",
                "claude-sonnet-4-5-20250929",
            ),
            ("gpt-5.2", "gpt-5.2"),
        ] {
            assert_eq!(strip_decorations(name), expected, "{name}");
        }
    }
}
