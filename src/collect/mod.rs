//! Collectors: follow proxy log files and count every line exactly once, across
//! rotation, truncation, compression, crashes and store outages.
//!
//! A file is known by its fingerprint (a hash of its first line), not its path: a renamed
//! file keeps its position, a compressed copy is recognised as the file it was, and a
//! truncated file gets a new identity and is read from its start. The position of each
//! file is a checkpoint written in the same transaction as the records read up to it, so
//! a crash at any instant neither loses nor doubles a line. One write is in flight per
//! collector at a time: checkpoints commit in order, and when the store is slow or away the
//! collector simply stops reading (bounded memory) and retries with backoff.

mod files;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Deserialize;
use tokio::sync::watch;

pub use files::{FINGERPRINT_BYTES, Line, LineReader, fingerprint, is_compressed};

use crate::ingest::{Intake, Pipeline};
use crate::metrics::Metrics;
use crate::prepare::Preparer;
use crate::pricing::LiveBook;
use crate::store::{Checkpoint, Store, StoreError, WriteBatch};
use crate::usage::{Format, ParsedUsage};

/// Where a collector starts in files that exist when it first sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

/// One `[[collectors]]` section of the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// Appears in metrics, dead letters and checkpoints: keep it stable.
    pub name: String,
    /// Glob patterns; files matching later are picked up while running.
    pub paths: Vec<String>,
    #[serde(default = "auto")]
    pub format: String,
    /// Project for lines that carry none.
    #[serde(default)]
    pub project: Option<String>,
    /// A JSON pointer (`/metadata/project`) whose value, when present, is the project.
    #[serde(default)]
    pub project_field: Option<String>,
    /// Tag name → JSON pointer.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub start_at: StartAt,
    /// Lines longer than this are dead-lettered (default 1 MiB).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// How often files are looked at (default 250ms).
    #[serde(default = "default_poll_interval", with = "crate::duration_text")]
    pub poll_interval: Duration,
    /// How long a file that no longer matches (renamed away, deleted) is still read
    /// through its open handle before it is forgotten (default 10s).
    #[serde(default = "default_rotate_wait", with = "crate::duration_text")]
    pub rotate_wait: Duration,
    /// Most lines in one write (default 2000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
}

fn auto() -> String {
    "auto".into()
}
fn default_max_line_bytes() -> usize {
    1 << 20
}
fn default_poll_interval() -> Duration {
    Duration::from_millis(250)
}
fn default_rotate_wait() -> Duration {
    Duration::from_secs(10)
}
fn default_batch_lines() -> usize {
    2000
}

impl CollectorConfig {
    /// Checks what serde cannot: names, patterns, pointers, the format.
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("collector {:?}", self.name);
        crate::usage::check_label("collector name", &self.name).map_err(|e| e.to_string())?;
        if self.paths.is_empty() {
            return Err(format!("{at}: `paths` is empty"));
        }
        for pattern in &self.paths {
            glob::Pattern::new(pattern)
                .map_err(|e| format!("{at}: bad path pattern {pattern:?}: {e}"))?;
        }
        Format::parse(&self.format).ok_or_else(|| {
            format!(
                "{at}: unknown format {:?}; expected one of {}",
                self.format,
                Format::NAMES
            )
        })?;
        for pointer in self.project_field.iter().chain(self.tags.values()) {
            if !pointer.starts_with('/') {
                return Err(format!(
                    "{at}: {pointer:?} is not a JSON pointer (it starts with /)"
                ));
            }
        }
        if let Some(project) = &self.project {
            crate::usage::check_label("project", project).map_err(|e| format!("{at}: {e}"))?;
        }
        if self.max_line_bytes == 0 || self.batch_lines == 0 {
            return Err(format!(
                "{at}: max_line_bytes and batch_lines must be positive"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("collector {collector}: {error}")]
    Store {
        collector: String,
        #[source]
        error: Arc<StoreError>,
    },
    #[error("collector {collector}: the ingest pipeline has shut down")]
    Closed { collector: String },
}

/// A file being followed.
struct Tracked {
    path: PathBuf,
    compressed: bool,
    /// Offset committed in the store (line boundary).
    committed: u64,
    /// Kept open for plain files so a renamed or deleted file can still be read to its end;
    /// holds any partial last line between polls.
    reader: Option<LineReader>,
    /// The open file behind `reader` (plain files), to see its size wherever it now is.
    handle: Option<File>,
    /// Content size when last looked at.
    size: u64,
    /// A compressed file read to its end: its size on disk then, to skip it while unchanged.
    read_at_length: Option<u64>,
    /// When the file stopped matching the patterns, if it did.
    gone_since: Option<Instant>,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    pub lines: u64,
    pub rejected: u64,
    pub accepted: u64,
    pub duplicates: u64,
}

pub struct Collector {
    config: CollectorConfig,
    format: Format,
    book: LiveBook,
    pipeline: Pipeline,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    files: HashMap<String, Tracked>,
    /// Checkpoints loaded at start for files not seen yet.
    saved: HashMap<String, Checkpoint>,
    first_poll: bool,
    started: Instant,
}

impl Collector {
    /// Loads the collector's checkpoints; files resume from them.
    pub async fn new(
        config: CollectorConfig,
        book: impl Into<LiveBook>,
        pipeline: Pipeline,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Collector, CollectError> {
        let format = Format::parse(&config.format).unwrap_or_default();
        let saved = store
            .checkpoints(&config.name)
            .await
            .map_err(|error| CollectError::Store {
                collector: config.name.clone(),
                error: Arc::new(error),
            })?
            .into_iter()
            .map(|c| (c.fingerprint.clone(), c))
            .collect();
        Ok(Collector {
            config,
            format,
            book: book.into(),
            pipeline,
            store,
            metrics,
            files: HashMap::new(),
            saved,
            first_poll: true,
            started: Instant::now(),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Follows the files until `stop` turns true, then finishes the write in flight.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *stop.borrow() {
                return;
            }
            match self.poll_once().await {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(message = "Collector poll failed; retrying.", %error, retry_in = ?backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
            let pause = if backoff > Duration::from_millis(100) {
                backoff
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Looks at every matching file once and commits everything complete it finds.
    pub async fn poll_once(&mut self) -> Result<PollOutcome, CollectError> {
        let mut outcome = PollOutcome::default();
        let found = self.discover();
        let first_poll = std::mem::replace(&mut self.first_poll, false);
        let mut start_at_end = Vec::new();
        for (fingerprint, path) in &found {
            if let Some(tracked) = self.files.get_mut(fingerprint) {
                if tracked.path != *path {
                    tracing::info!(message = "File moved.", collector = %self.config.name, from = %tracked.path.display(), to = %path.display());
                    // Renamed, copied (copytruncate) or compressed: read on from the file now
                    // found, from the committed offset, whichever it is.
                    tracked.compressed = is_compressed(path);
                    tracked.path = path.clone();
                    tracked.reader = None;
                    tracked.handle = None;
                    tracked.read_at_length = None;
                }
                tracked.gone_since = None;
                continue;
            }
            let committed = match self.saved.remove(fingerprint) {
                Some(checkpoint) => checkpoint.offset,
                None if first_poll
                    && self.config.start_at == StartAt::End
                    && !is_compressed(path) =>
                {
                    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    start_at_end.push(Checkpoint {
                        collector: self.config.name.clone(),
                        fingerprint: fingerprint.clone(),
                        path: path.display().to_string(),
                        offset: size,
                    });
                    size
                }
                None => 0,
            };
            self.files.insert(
                fingerprint.clone(),
                Tracked {
                    path: path.clone(),
                    compressed: is_compressed(path),
                    committed,
                    reader: None,
                    handle: None,
                    size: 0,
                    read_at_length: None,
                    gone_since: None,
                },
            );
        }
        if !start_at_end.is_empty() {
            // Remember "the end" durably, or a restart would skip what came since.
            let batch = WriteBatch {
                checkpoints: start_at_end,
                ..WriteBatch::default()
            };
            self.commit(batch).await?;
        }
        let seen: HashSet<&String> = found.iter().map(|(f, _)| f).collect();
        for (fingerprint, tracked) in self.files.iter_mut() {
            if !seen.contains(fingerprint) && tracked.gone_since.is_none() {
                tracked.gone_since = Some(Instant::now());
            }
        }
        let fingerprints: Vec<String> = self.files.keys().cloned().collect();
        for fingerprint in fingerprints {
            let part = self.read_file(&fingerprint).await?;
            outcome.lines += part.lines;
            outcome.rejected += part.rejected;
            outcome.accepted += part.accepted;
            outcome.duplicates += part.duplicates;
        }
        self.forget_finished().await?;
        self.forget_missing_saved().await?;
        self.update_metrics();
        Ok(outcome)
    }

    /// Every file matching the patterns, by fingerprint (files without a complete first
    /// line yet are left for later).
    fn discover(&self) -> Vec<(String, PathBuf)> {
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        let mut paths: Vec<PathBuf> = self
            .config
            .paths
            .iter()
            .filter_map(|pattern| glob::glob(pattern).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        paths.dedup();
        for path in paths {
            match fingerprint(&path) {
                Ok(Some(fingerprint)) => {
                    if let Some((_, other)) = found.iter().find(|(f, _)| *f == fingerprint) {
                        // Two files with one first line: the same file twice (a copy being
                        // compressed), or a collision. Prefer the plain, growing one.
                        tracing::debug!(message = "Two files share a fingerprint.", first = %other.display(), second = %path.display());
                        if is_compressed(other) && !is_compressed(&path) {
                            found.retain(|(f, _)| *f != fingerprint);
                            found.push((fingerprint, path));
                        }
                        continue;
                    }
                    found.push((fingerprint, path));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(message = "Cannot read a file.", path = %path.display(), %error);
                }
            }
        }
        found
    }

    /// Reads one file from its committed offset to its last complete line, in writes of
    /// at most `batch_lines` lines, each committed with its checkpoint.
    async fn read_file(&mut self, fingerprint: &str) -> Result<PollOutcome, CollectError> {
        let mut outcome = PollOutcome::default();
        let max_line = self.config.max_line_bytes;
        let Some(tracked) = self.files.get_mut(fingerprint) else {
            return Ok(outcome);
        };
        if tracked.compressed {
            let length = std::fs::metadata(&tracked.path).map(|m| m.len()).ok();
            if length.is_some() && length == tracked.read_at_length {
                return Ok(outcome);
            }
        } else {
            // The size of the file we hold open, wherever it now is. Shorter than its
            // offset: truncated in place (and rewritten with the same first line).
            let size = match &tracked.handle {
                Some(handle) => handle.metadata().map(|m| m.len()).unwrap_or(tracked.size),
                None => std::fs::metadata(&tracked.path)
                    .map(|m| m.len())
                    .unwrap_or(0),
            };
            if size < tracked.committed && tracked.gone_since.is_none() {
                tracing::info!(message = "File truncated; reading it from the start.", path = %tracked.path.display());
                tracked.committed = 0;
                tracked.reader = None;
                tracked.handle = None;
            }
            tracked.size = size;
        }
        if tracked.reader.is_none() {
            if tracked.gone_since.is_some() {
                // Its path may now name another file: only an open handle can read it.
                return Ok(outcome);
            }
            let opened = if tracked.compressed {
                LineReader::open(&tracked.path, tracked.committed, max_line).map(|r| (r, None))
            } else {
                File::open(&tracked.path).and_then(|file| {
                    let handle = file.try_clone()?;
                    Ok((
                        LineReader::from_file(file, tracked.committed, max_line)?,
                        Some(handle),
                    ))
                })
            };
            match opened {
                Ok((reader, handle)) => {
                    tracked.reader = Some(reader);
                    tracked.handle = handle;
                }
                Err(error) => {
                    tracing::debug!(message = "Cannot open a file.", path = %tracked.path.display(), %error);
                    return Ok(outcome);
                }
            }
        }
        let finished_growing = tracked.compressed
            || tracked
                .gone_since
                .is_some_and(|since| since.elapsed() >= self.config.rotate_wait);
        loop {
            let tracked = self.files.get_mut(fingerprint).expect("tracked");
            let path_text = tracked.path.display().to_string();
            let reader = tracked.reader.as_mut().expect("opened above");
            let mut lines: Vec<(u64, Line)> = Vec::new();
            let mut next_line = reader.position();
            while lines.len() < self.config.batch_lines {
                let line = match reader.next_line() {
                    Ok(Some(line)) => line,
                    Ok(None) if finished_growing => match reader.take_partial() {
                        Some(line) => line,
                        None => break,
                    },
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(message = "Reading a file failed.", path = %path_text, %error);
                        break;
                    }
                };
                lines.push((next_line, line));
                next_line = reader.position();
            }
            if lines.is_empty() {
                if tracked.compressed {
                    // Read to its end: skip it until it changes on disk.
                    tracked.size = tracked.committed;
                    tracked.reader = None;
                    tracked.read_at_length = std::fs::metadata(&tracked.path).map(|m| m.len()).ok();
                }
                return Ok(outcome);
            }
            let end = reader.position();
            let written = self
                .write_lines(fingerprint, &path_text, lines, end)
                .await?;
            outcome.lines += written.lines;
            outcome.rejected += written.rejected;
            outcome.accepted += written.accepted;
            outcome.duplicates += written.duplicates;
            let tracked = self.files.get_mut(fingerprint).expect("tracked");
            tracked.committed = end;
            tracked.size = tracked.size.max(end);
        }
    }

    /// Prepares lines and commits them with the file's new checkpoint.
    async fn write_lines(
        &self,
        fingerprint: &str,
        path: &str,
        lines: Vec<(u64, Line)>,
        end: u64,
    ) -> Result<PollOutcome, CollectError> {
        let project = self
            .config
            .project
            .as_deref()
            .unwrap_or(crate::usage::DEFAULT_PROJECT);
        let book = self.book.current();
        let preparer = Preparer::new(&book, self.format, project);
        let mut intake = Intake::new(preparer, &self.config.name, Utc::now())
            .with_dead_letter_source(&format!("collector {} {path}", self.config.name));
        let mut outcome = PollOutcome::default();
        for (index, (offset, line)) in lines.into_iter().enumerate() {
            outcome.lines += 1;
            match line {
                Line::Text { bytes, .. } => {
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match std::str::from_utf8(&bytes) {
                        Ok(text) => self.add_line(&mut intake, index, text),
                        Err(_) => intake.reject(
                            index,
                            "not_utf8",
                            &format!("at byte {offset}: not valid UTF-8"),
                            &String::from_utf8_lossy(&bytes),
                        ),
                    }
                }
                Line::TooLong { sample, length, .. } => intake.reject(
                    index,
                    "line_too_long",
                    &format!(
                        "at byte {offset}: line of {length} bytes is longer than {} bytes",
                        self.config.max_line_bytes
                    ),
                    &String::from_utf8_lossy(&sample),
                ),
            }
        }
        let prepared = intake.take();
        let mut batch = prepared.batch;
        outcome.rejected = prepared.rejections.len() as u64;
        batch.checkpoints.push(Checkpoint {
            collector: self.config.name.clone(),
            fingerprint: fingerprint.to_owned(),
            path: path.to_owned(),
            offset: end,
        });
        let committed = self.commit(batch).await?;
        outcome.accepted = committed.accepted as u64;
        outcome.duplicates = committed.duplicates as u64;
        outcome.rejected += committed.refused.len() as u64;
        let counter = |outcome: &str| {
            self.metrics
                .collector_lines
                .with_label_values(&[self.config.name.as_str(), outcome])
        };
        counter("read").inc_by(outcome.lines);
        counter("rejected").inc_by(outcome.rejected);
        Ok(outcome)
    }

    /// Parses one line, applying the configured project and tag pointers.
    fn add_line(&self, intake: &mut Intake<'_>, index: usize, text: &str) {
        if self.config.project_field.is_none() && self.config.tags.is_empty() {
            intake.add_text(index, text);
            return;
        }
        intake.add_text_with(index, text, |parsed: &mut ParsedUsage| {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
                return;
            };
            let scalar = |pointer: &str| match value.pointer(pointer)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            if let Some(project) = self.config.project_field.as_deref().and_then(scalar)
                && crate::usage::check_label("project", &project).is_ok()
            {
                parsed.project = Some(project);
            }
            for (tag, pointer) in &self.config.tags {
                if let Some(value) = scalar(pointer) {
                    parsed.tags.insert(tag.clone(), value);
                }
            }
        });
    }

    async fn commit(&self, batch: WriteBatch) -> Result<crate::ingest::Committed, CollectError> {
        self.pipeline
            .write_retrying(batch, &self.config.name, Duration::from_secs(30))
            .await
            .map_err(|error| match error {
                crate::ingest::IngestError::Closed => CollectError::Closed {
                    collector: self.config.name.clone(),
                },
                crate::ingest::IngestError::Store(error) => CollectError::Store {
                    collector: self.config.name.clone(),
                    error,
                },
            })
    }

    /// Files that stopped matching, were read to their end and have waited `rotate_wait`
    /// are forgotten, and so are their checkpoints.
    async fn forget_finished(&mut self) -> Result<(), CollectError> {
        let rotate_wait = self.config.rotate_wait;
        let done: Vec<String> = self
            .files
            .iter()
            .filter(|(_, t)| {
                t.gone_since
                    .is_some_and(|since| since.elapsed() >= rotate_wait)
                    && t.reader.as_ref().is_none_or(|r| r.pending_bytes() == 0)
            })
            .map(|(f, _)| f.clone())
            .collect();
        for fingerprint in done {
            self.forget_checkpoint(&fingerprint).await?;
            if let Some(tracked) = self.files.remove(&fingerprint) {
                tracing::info!(message = "Forgot a finished file.", collector = %self.config.name, path = %tracked.path.display());
            }
        }
        Ok(())
    }

    async fn forget_checkpoint(&self, fingerprint: &str) -> Result<(), CollectError> {
        self.store
            .delete_checkpoint(&self.config.name, fingerprint)
            .await
            .map_err(|error| CollectError::Store {
                collector: self.config.name.clone(),
                error: Arc::new(error),
            })
    }

    /// Checkpoints of files that were not found for `rotate_wait` after start belong to
    /// files deleted while the collector was down: forget them.
    async fn forget_missing_saved(&mut self) -> Result<(), CollectError> {
        if self.saved.is_empty() || self.started.elapsed() < self.config.rotate_wait {
            return Ok(());
        }
        for (fingerprint, checkpoint) in std::mem::take(&mut self.saved) {
            tracing::info!(message = "Forgot the checkpoint of a file no longer there.", collector = %self.config.name, path = %checkpoint.path);
            self.forget_checkpoint(&fingerprint).await?;
        }
        Ok(())
    }

    fn update_metrics(&self) {
        let lag: u64 = self
            .files
            .values()
            .map(|t| t.size.saturating_sub(t.committed))
            .sum();
        self.metrics
            .collector_lag_bytes
            .with_label_values(&[self.config.name.as_str()])
            .set(lag as f64);
        self.metrics
            .collector_files
            .with_label_values(&[self.config.name.as_str()])
            .set(self.files.len() as f64);
    }

    /// Bytes written to followed files but not committed yet.
    pub fn lag_bytes(&self) -> u64 {
        self.files
            .values()
            .map(|t| t.size.saturating_sub(t.committed))
            .sum()
    }

    /// Paths currently followed, for tests and logs.
    pub fn followed(&self) -> Vec<&Path> {
        self.files.values().map(|t| t.path.as_path()).collect()
    }
}
