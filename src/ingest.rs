//! The one pipeline every input goes through: parse → normalise → price (in the
//! submitter's task, `Intake`) → batch → store → metrics (in the batcher task,
//! `Pipeline`). HTTP ingest, OTLP, backfill and the tailer all use it.
//!
//! Submitters wait for their records to be committed. Several submissions are merged
//! into one transaction (group commit) up to a size and a delay. The queue between
//! submitters and the batcher is bounded, so a slow store slows the submitters down
//! instead of growing memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, outcome};
use crate::prepare::Preparer;
use crate::store::{DeadLetter, Inserted, NewEvent, Store, StoreError, WriteBatch};
use crate::usage::ParsedUsage;

/// Projects whose spend changed since the last look: what the budget engine re-evaluates.
#[derive(Debug, Default)]
pub struct Changes {
    projects: std::sync::Mutex<std::collections::HashSet<String>>,
    notify: tokio::sync::Notify,
}

impl Changes {
    /// Notes the projects of newly stored records and wakes the waiter.
    pub fn mark<'p>(&self, projects: impl IntoIterator<Item = &'p str>) {
        let mut any = false;
        if let Ok(mut set) = self.projects.lock() {
            for project in projects {
                any = true;
                if !set.contains(project) {
                    set.insert(project.to_owned());
                }
            }
        }
        if any {
            self.notify.notify_one();
        }
    }

    /// Waits until something is marked.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// The projects marked since the last call.
    pub fn take(&self) -> std::collections::HashSet<String> {
        self.projects
            .lock()
            .map(|mut set| std::mem::take(&mut *set))
            .unwrap_or_default()
    }
}

/// How batches are formed.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Most records in one transaction.
    pub max_batch_records: usize,
    /// How long the first submission of a batch may wait for others to join it.
    pub max_batch_delay: Duration,
    /// Submissions that may wait in the queue before submitters are held back.
    pub queue_depth: usize,
    /// Batches written at once, each in its own transaction. Keys are sorted, so
    /// concurrent batches cannot deadlock; a submitter with a checkpoint must wait for
    /// its previous batch before sending the next (the tailer does), so checkpoints of
    /// one file never commit out of order.
    pub writers: usize,
    /// Told which projects each commit added records to.
    pub changes: Option<Arc<Changes>>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_batch_records: 5000,
            max_batch_delay: Duration::from_millis(5),
            queue_depth: 64,
            writers: 2,
            changes: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(Arc<StoreError>),
    #[error("the ingest pipeline has shut down")]
    Closed,
}

impl IngestError {
    /// True when the same write may succeed later (store outage).
    pub fn is_transient(&self) -> bool {
        match self {
            IngestError::Store(error) => error.is_transient(),
            IngestError::Closed => false,
        }
    }
}

struct Submission {
    batch: Arc<WriteBatch>,
    /// Bounded source kind for metrics: `http`, `otlp`, `backfill`, a collector name.
    source: Arc<str>,
    reply: oneshot::Sender<Result<Inserted, Arc<StoreError>>>,
}

/// The handle submitters hold. Cloning it is cheap.
#[derive(Clone)]
pub struct Pipeline {
    sender: mpsc::Sender<Submission>,
    metrics: Arc<Metrics>,
}

/// What a committed submission did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    pub accepted: usize,
    pub duplicates: usize,
    /// Per event, in order: `true` if new.
    pub inserted: Inserted,
}

impl Pipeline {
    /// Starts the batcher. It stops when every `Pipeline` handle is dropped, after
    /// writing what it was given.
    pub fn start(
        store: Arc<dyn Store>,
        config: PipelineConfig,
        metrics: Arc<Metrics>,
    ) -> (Pipeline, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(config.queue_depth.max(1));
        let task = tokio::spawn(run_batcher(store, config, receiver, metrics.clone()));
        (Pipeline { sender, metrics }, task)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Writes a batch (events, dead letters, checkpoints) and waits for the commit.
    pub async fn write(&self, batch: WriteBatch, source: &str) -> Result<Committed, IngestError> {
        self.write_shared(Arc::new(batch), source).await
    }

    async fn write_shared(
        &self,
        batch: Arc<WriteBatch>,
        source: &str,
    ) -> Result<Committed, IngestError> {
        let (reply, answer) = oneshot::channel();
        let submission = Submission {
            batch,
            source: Arc::from(source),
            reply,
        };
        self.sender
            .send(submission)
            .await
            .map_err(|_| IngestError::Closed)?;
        let inserted = answer
            .await
            .map_err(|_| IngestError::Closed)?
            .map_err(IngestError::Store)?;
        let accepted = inserted.iter().filter(|new| **new).count();
        Ok(Committed {
            accepted,
            duplicates: inserted.len() - accepted,
            inserted,
        })
    }
}

impl Pipeline {
    /// Writes a batch, retrying with exponential backoff (up to `max_delay` between
    /// attempts) while the store is unreachable. Retrying is safe: a batch whose commit
    /// went through but whose answer was lost comes back as duplicates.
    pub async fn write_retrying(
        &self,
        batch: WriteBatch,
        source: &str,
        max_delay: Duration,
    ) -> Result<Committed, IngestError> {
        let batch = Arc::new(batch);
        let mut delay = Duration::from_millis(100).min(max_delay);
        loop {
            match self.write_shared(batch.clone(), source).await {
                Ok(committed) => return Ok(committed),
                Err(error) if error.is_transient() => {
                    tracing::warn!(message = "Store unavailable; retrying.", %error, retry_in = ?delay);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(max_delay);
                }
                Err(error) => return Err(error),
            }
        }
    }
}

async fn run_batcher(
    store: Arc<dyn Store>,
    config: PipelineConfig,
    mut receiver: mpsc::Receiver<Submission>,
    metrics: Arc<Metrics>,
) {
    let writers = Arc::new(tokio::sync::Semaphore::new(config.writers.max(1)));
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(first) = receiver.recv().await {
        let mut submissions = vec![first];
        let mut records = submissions[0].batch.events.len();
        let deadline = tokio::time::Instant::now() + config.max_batch_delay;
        while records < config.max_batch_records {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(next)) => {
                    records += next.batch.events.len();
                    submissions.push(next);
                }
                Ok(None) | Err(_) => break,
            }
        }
        // Wait for a free writer; meanwhile the queue keeps filling (bounded).
        let Ok(permit) = writers.clone().acquire_owned().await else {
            break;
        };
        let (store, metrics) = (store.clone(), metrics.clone());
        let changes = config.changes.clone();
        in_flight.spawn(async move {
            write_merged(store.as_ref(), submissions, &metrics, changes.as_deref()).await;
            drop(permit);
        });
        while in_flight.try_join_next().is_some() {}
    }
    // Shutting down: every accepted submission is written before the batcher ends.
    while in_flight.join_next().await.is_some() {}
}

/// Writes several submissions in one transaction and answers each of them.
async fn write_merged(
    store: &dyn Store,
    submissions: Vec<Submission>,
    metrics: &Metrics,
    changes: Option<&Changes>,
) {
    let parts: Vec<&WriteBatch> = submissions.iter().map(|s| s.batch.as_ref()).collect();
    let mut ranges = Vec::with_capacity(submissions.len());
    let mut start = 0;
    for part in &parts {
        ranges.push(start..start + part.events.len());
        start += part.events.len();
    }
    let started = Instant::now();
    let result = store.write(&parts).await;
    drop(parts);
    metrics
        .ingest_batch_seconds
        .with_label_values(&[] as &[&str])
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(inserted) => {
            let events = submissions.iter().flat_map(|s| s.batch.events.iter());
            let stored = || {
                events
                    .clone()
                    .zip(&inserted)
                    .filter(|(_, new)| **new)
                    .map(|(event, _)| event)
            };
            metrics.record_stored(stored());
            if let Some(changes) = changes {
                changes.mark(stored().map(|event| event.priced.record.project.as_str()));
            }
            for (submission, range) in submissions.into_iter().zip(ranges) {
                let part = inserted[range].to_vec();
                let source: &str = &submission.source;
                let accepted = part.iter().filter(|new| **new).count() as u64;
                let counter =
                    |outcome: &str| metrics.ingest_records.with_label_values(&[source, outcome]);
                counter(outcome::ACCEPTED).inc_by(accepted);
                counter(outcome::DUPLICATE).inc_by(part.len() as u64 - accepted);
                counter(outcome::REJECTED).inc_by(submission.batch.dead_letters.len() as u64);
                let _ = submission.reply.send(Ok(part));
            }
        }
        Err(error) => {
            tracing::warn!(message = "Writing a batch failed.", %error, records = start);
            let error = Arc::new(error);
            for submission in submissions {
                let _ = submission.reply.send(Err(error.clone()));
            }
        }
    }
}

/// A record that could not be used, with its position in the request or file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Rejection {
    pub index: usize,
    pub error: String,
    /// Refused because the caller's token may not write its project (not a bad record).
    #[serde(skip)]
    pub forbidden: bool,
}

/// The prepare stage for one request, file chunk or span batch: turns texts (or parsed
/// records) into events and dead letters, remembering the position of each rejection.
pub struct Intake<'b> {
    preparer: Preparer<'b>,
    source: Arc<str>,
    dead_letter_source: String,
    now: DateTime<Utc>,
    pub batch: WriteBatch,
    pub rejections: Vec<Rejection>,
    /// The projects records may be written to; `None`: any.
    allowed_projects: Option<Arc<std::collections::BTreeSet<String>>>,
}

impl<'b> Intake<'b> {
    pub fn new(preparer: Preparer<'b>, source: &str, now: DateTime<Utc>) -> Self {
        Intake {
            preparer,
            source: Arc::from(source),
            dead_letter_source: source.to_owned(),
            now,
            batch: WriteBatch::default(),
            rejections: Vec::new(),
            allowed_projects: None,
        }
    }

    /// Refuses records of other projects (an ingest token's scope). They are answered
    /// as rejections but not kept as dead letters: nothing of them is stored.
    pub fn with_allowed_projects(
        mut self,
        projects: Option<Arc<std::collections::BTreeSet<String>>>,
    ) -> Self {
        self.allowed_projects = projects;
        self
    }

    fn accept(&mut self, index: usize, priced: crate::prepare::PricedRecord) {
        let project = &priced.record.project;
        if let Some(allowed) = &self.allowed_projects
            && !allowed.contains(project)
        {
            self.rejections.push(Rejection {
                index,
                error: format!("this token may not write to project {project:?}"),
                forbidden: true,
            });
            return;
        }
        self.batch.events.push(NewEvent {
            priced,
            source: self.source.clone(),
        });
    }

    /// Names where dead letters came from in more detail than the source kind
    /// (`backfill /var/log/proxy.jsonl`).
    pub fn with_dead_letter_source(mut self, source: &str) -> Self {
        self.dead_letter_source = source.to_owned();
        self
    }

    /// Parses, normalises and prices one record's text; a failure becomes a dead letter.
    pub fn add_text(&mut self, index: usize, text: &str) {
        match self.preparer.prepare(text, self.now) {
            Ok(priced) => self.accept(index, priced),
            Err(error) => self.reject(index, error.code(), &error.to_string(), text),
        }
    }

    /// Like `add_text`, letting `adjust` change the parsed record before it is priced
    /// (a collector's project and tag pointers).
    pub fn add_text_with(
        &mut self,
        index: usize,
        text: &str,
        adjust: impl FnOnce(&mut ParsedUsage),
    ) {
        match crate::usage::parse_record(text, self.preparer.format) {
            Ok(mut parsed) => {
                adjust(&mut parsed);
                self.add_parsed(index, parsed, text);
            }
            Err(error) => self.reject(index, error.code(), &error.to_string(), text),
        }
    }

    /// Adds a record that was parsed elsewhere (OTLP spans).
    pub fn add_parsed(&mut self, index: usize, parsed: ParsedUsage, original: &str) {
        match self.preparer.prepare_parsed(parsed, self.now) {
            Ok(priced) => self.accept(index, priced),
            Err(error) => self.reject(index, error.code(), &error.to_string(), original),
        }
    }

    /// Records a rejection that happened before parsing (a line too long, not UTF-8).
    pub fn reject(&mut self, index: usize, code: &str, reason: &str, text: &str) {
        self.batch.dead_letters.push(DeadLetter::new(
            &self.dead_letter_source,
            code,
            reason,
            text,
            self.now,
        ));
        self.rejections.push(Rejection {
            index,
            error: reason.to_owned(),
            forbidden: false,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.batch.events.is_empty() && self.batch.dead_letters.is_empty()
    }

    /// Hands the accumulated batch over, leaving the intake empty for reuse.
    pub fn take(&mut self) -> (WriteBatch, Vec<Rejection>) {
        (
            std::mem::take(&mut self.batch),
            std::mem::take(&mut self.rejections),
        )
    }
}
