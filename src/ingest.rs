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
    /// `[retention] events`: records older than this are refused (dead-lettered), never
    /// stored, so a replayed old log cannot count again once its events were removed.
    pub events_retention: Option<Duration>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_batch_records: 5000,
            max_batch_delay: Duration::from_millis(5),
            queue_depth: 64,
            writers: 2,
            changes: None,
            events_retention: None,
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
    reply: oneshot::Sender<Result<Written, Arc<StoreError>>>,
}

/// The handle submitters hold. Cloning it is cheap.
#[derive(Clone)]
pub struct Pipeline {
    sender: mpsc::Sender<Submission>,
    metrics: Arc<Metrics>,
    events_retention: Option<Duration>,
}

/// What a committed submission did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    pub accepted: usize,
    pub duplicates: usize,
    /// Per event, in order: `true` if new.
    pub inserted: Inserted,
    /// The events the store refused (dead-lettered with their reason), by position.
    pub refused: Vec<Refused>,
}

impl Committed {
    /// The refused events as rejections, at the positions `positions` gives each event
    /// (`Intake::positions`).
    pub fn refusals(&self, positions: &[usize]) -> Vec<Rejection> {
        self.refused
            .iter()
            .map(|refused| Rejection {
                index: positions
                    .get(refused.event)
                    .copied()
                    .unwrap_or(refused.event),
                error: refused.reason.clone(),
                forbidden: false,
            })
            .collect()
    }
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
        let events_retention = config.events_retention;
        let task = tokio::spawn(run_batcher(store, config, receiver, metrics.clone()));
        (
            Pipeline {
                sender,
                metrics,
                events_retention,
            },
            task,
        )
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
        let horizon = self
            .events_retention
            .and_then(|keep| chrono::Duration::from_std(keep).ok())
            .and_then(|keep| Utc::now().checked_sub_signed(keep));
        let Some(mut past) =
            horizon.and_then(|horizon| PastHorizon::split(&batch, horizon, source))
        else {
            return self.write_unchecked(batch, source).await;
        };
        let kept = Arc::new(std::mem::take(&mut past.kept));
        let written = self.write_unchecked(kept, source).await?;
        Ok(past.merge(written))
    }

    async fn write_unchecked(
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
        let written = answer
            .await
            .map_err(|_| IngestError::Closed)?
            .map_err(IngestError::Store)?;
        let accepted = written.inserted.iter().filter(|new| **new).count();
        Ok(Committed {
            accepted,
            duplicates: written.inserted.len() - accepted - written.refused.len(),
            inserted: written.inserted,
            refused: written.refused,
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

/// Writes several submissions in one transaction and answers each of them. When the
/// merged transaction fails for a reason other than an outage, each submission is written
/// again on its own (`write_isolated`), so what one client sent can fail only its own
/// records.
async fn write_merged(
    store: &dyn Store,
    submissions: Vec<Submission>,
    metrics: &Metrics,
    changes: Option<&Changes>,
) {
    let parts: Vec<&WriteBatch> = submissions.iter().map(|s| s.batch.as_ref()).collect();
    let records: usize = parts.iter().map(|p| p.events.len()).sum();
    let started = Instant::now();
    let result = write_contended(store, &parts).await;
    drop(parts);
    metrics
        .ingest_batch_seconds
        .with_label_values(&[] as &[&str])
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(inserted) => {
            let mut start = 0;
            for submission in submissions {
                let end = start + submission.batch.events.len();
                let written = Written {
                    inserted: inserted[start..end].to_vec(),
                    refused: Vec::new(),
                };
                start = end;
                settle(submission, Ok(written), metrics, changes);
            }
        }
        Err(error) if !matches!(error, StoreError::Refused(_)) => {
            // An outage or a fault of the store itself says nothing about the records.
            tracing::warn!(message = "Writing a batch failed.", %error, records);
            let error = Arc::new(error);
            for submission in submissions {
                settle(submission, Err(error.clone()), metrics, changes);
            }
        }
        Err(error) => {
            tracing::warn!(
                message = "The store refused a merged batch; writing its submissions one by one.",
                %error,
                records,
                submissions = submissions.len()
            );
            // A batch of one submission was that submission alone: its refusal is known.
            let known = match (&error, submissions.len()) {
                (StoreError::Refused(reason), 1) => Some(reason.clone()),
                _ => None,
            };
            for submission in submissions {
                let written =
                    write_isolated(store, &submission.batch, &submission.source, known.clone())
                        .await;
                settle(submission, written.map_err(Arc::new), metrics, changes);
            }
        }
    }
}

/// Most halvings spent finding the records of one submission the store refuses; past
/// it, the records still in doubt are refused together (dead-lettered, not lost).
const MAX_ISOLATION_SPLITS: usize = 128;

/// Writes one submission that the store refused as part of a merged batch: alone first
/// (unless `known` already says why it is refused alone), then its events in halves until
/// each refused record stands alone. Refused records are dead-lettered with the store's
/// reason; the submission's own dead letters and checkpoints are written last, once all
/// its events are settled, so a crash in between re-reads the records (duplicates)
/// rather than skipping them.
async fn write_isolated(
    store: &dyn Store,
    batch: &WriteBatch,
    source: &str,
    known: Option<String>,
) -> Result<Written, StoreError> {
    let first_refusal = match known {
        Some(reason) => reason,
        None => match write_refusable(store, batch).await? {
            Ok(inserted) => {
                return Ok(Written {
                    inserted,
                    refused: Vec::new(),
                });
            }
            Err(reason) => reason,
        },
    };
    let events = &batch.events;
    let mut inserted = vec![false; events.len()];
    let mut refused = Vec::new();
    let mut splits_left = MAX_ISOLATION_SPLITS;
    // Ranges still to write, a stack popped in event order, with the store's reason for
    // refusing them when it is known.
    let mut pending = vec![(0..events.len(), Some(first_refusal))];
    while let Some((range, known)) = pending.pop() {
        let reason = match known {
            Some(reason) => reason,
            None => {
                let part = WriteBatch {
                    events: events[range.clone()].to_vec(),
                    ..WriteBatch::default()
                };
                match write_refusable(store, &part).await? {
                    Ok(part_inserted) => {
                        inserted[range].copy_from_slice(&part_inserted);
                        continue;
                    }
                    Err(reason) => reason,
                }
            }
        };
        if range.len() <= 1 || splits_left == 0 {
            let reason = if range.len() > 1 {
                format!(
                    "refused with other records of its request, too many of which the store refused: {reason}"
                )
            } else {
                reason
            };
            refused.extend(range.map(|event| Refused {
                event,
                reason: reason.clone(),
            }));
            continue;
        }
        splits_left -= 1;
        let middle = range.start + range.len() / 2;
        pending.push((middle..range.end, None));
        pending.push((range.start..middle, None));
    }
    let now = Utc::now();
    let mut rest = WriteBatch {
        events: Vec::new(),
        dead_letters: batch.dead_letters.clone(),
        checkpoints: batch.checkpoints.clone(),
    };
    for refusal in &refused {
        let record = &events[refusal.event].priced.record;
        let line = serde_json::to_string(record).unwrap_or_default();
        rest.dead_letters.push(DeadLetter::new(
            source,
            REFUSED_CODE,
            &refusal.reason,
            &line,
            now,
        ));
    }
    write_contended(store, &[&rest]).await?;
    Ok(Written { inserted, refused })
}

/// The dead-letter code of a record the store refused.
pub const REFUSED_CODE: &str = "refused_by_store";

/// `write_contended` with a refusal of the records told apart: `Ok(Err(reason))`.
async fn write_refusable(
    store: &dyn Store,
    batch: &WriteBatch,
) -> Result<Result<Inserted, String>, StoreError> {
    match write_contended(store, &[batch]).await {
        Ok(inserted) => Ok(Ok(inserted)),
        Err(StoreError::Refused(reason)) => Ok(Err(reason)),
        Err(error) => Err(error),
    }
}

/// Most times a transaction that lost a deadlock is tried again at once.
const CONTENTION_RETRIES: u32 = 4;

/// `Store::write`, tried again when it lost a deadlock or a serialization conflict
/// (two replicas writing the same keys): those say nothing about the records.
async fn write_contended(store: &dyn Store, parts: &[&WriteBatch]) -> Result<Inserted, StoreError> {
    let mut tries = 0;
    loop {
        match store.write(parts).await {
            Err(error) if error.is_contention() && tries < CONTENTION_RETRIES => {
                tries += 1;
                tracing::debug!(message = "A write lost a deadlock; trying again.", %error);
                // A short pause that differs between writers lets the winner commit.
                let jitter = u64::from(std::process::id() % 7) + u64::from(tries) * 3;
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            result => return result,
        }
    }
}

/// What the store did with one submission: per event, new or not, and the events it
/// refused (their positions in the submission) with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Written {
    inserted: Inserted,
    refused: Vec<Refused>,
}

/// The dead-letter code of a record older than the events retention horizon.
pub const PAST_RETENTION_CODE: &str = "past_retention";

/// A batch with records older than the retention horizon: the rest, to write, and the
/// refused ones (dead-lettered in the rest's transaction).
struct PastHorizon {
    kept: WriteBatch,
    /// Per kept event, its position in the batch as submitted.
    kept_positions: Vec<usize>,
    refused: Vec<Refused>,
    events: usize,
}

impl PastHorizon {
    /// `None` when no record of the batch is older than `horizon`.
    fn split(batch: &WriteBatch, horizon: DateTime<Utc>, source: &str) -> Option<PastHorizon> {
        if batch
            .events
            .iter()
            .all(|event| event.priced.record.time >= horizon)
        {
            return None;
        }
        let now = Utc::now();
        let mut past = PastHorizon {
            kept: WriteBatch {
                events: Vec::new(),
                dead_letters: batch.dead_letters.clone(),
                checkpoints: batch.checkpoints.clone(),
            },
            kept_positions: Vec::new(),
            refused: Vec::new(),
            events: batch.events.len(),
        };
        for (position, event) in batch.events.iter().enumerate() {
            let record = &event.priced.record;
            if record.time >= horizon {
                past.kept.events.push(event.clone());
                past.kept_positions.push(position);
                continue;
            }
            let reason = format!(
                "time {} is before the retention horizon {} ([retention] events): records that \
                 old are not kept",
                crate::usage::format_time(&record.time),
                crate::usage::format_time(&horizon),
            );
            let line = serde_json::to_string(record).unwrap_or_default();
            past.kept.dead_letters.push(DeadLetter::new(
                source,
                PAST_RETENTION_CODE,
                &reason,
                &line,
                now,
            ));
            past.refused.push(Refused {
                event: position,
                reason,
            });
        }
        Some(past)
    }

    /// The answer for the batch as submitted, from the answer for the rest.
    fn merge(mut self, written: Committed) -> Committed {
        let mut inserted = vec![false; self.events];
        for (kept, new) in written.inserted.into_iter().enumerate() {
            inserted[self.kept_positions[kept]] = new;
        }
        self.refused
            .extend(written.refused.into_iter().map(|refused| Refused {
                event: self.kept_positions[refused.event],
                reason: refused.reason,
            }));
        self.refused.sort_by_key(|refused| refused.event);
        Committed {
            accepted: written.accepted,
            duplicates: written.duplicates,
            inserted,
            refused: self.refused,
        }
    }
}

/// An event the store refused: its position among the submission's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub event: usize,
    pub reason: String,
}

/// Counts a submission's outcome in the metrics, marks the projects it changed, and
/// answers its submitter.
fn settle(
    submission: Submission,
    written: Result<Written, Arc<StoreError>>,
    metrics: &Metrics,
    changes: Option<&Changes>,
) {
    if let Ok(written) = &written {
        let stored = || {
            submission
                .batch
                .events
                .iter()
                .zip(&written.inserted)
                .filter(|(_, new)| **new)
                .map(|(event, _)| event)
        };
        metrics.record_stored(stored());
        if let Some(changes) = changes {
            changes.mark(stored().map(|event| event.priced.record.project.as_str()));
        }
        let source: &str = &submission.source;
        let accepted = written.inserted.iter().filter(|new| **new).count() as u64;
        let refused = written.refused.len() as u64;
        let counter = |outcome: &str| metrics.ingest_records.with_label_values(&[source, outcome]);
        counter(outcome::ACCEPTED).inc_by(accepted);
        counter(outcome::DUPLICATE).inc_by(written.inserted.len() as u64 - accepted - refused);
        counter(outcome::REJECTED).inc_by(submission.batch.dead_letters.len() as u64 + refused);
    }
    let _ = submission.reply.send(written);
}

/// The write of one chunk, running.
type ChunkWrite = JoinHandle<Result<Committed, IngestError>>;

/// A large request written a chunk at a time, each chunk committed on its own: the next
/// chunk is prepared while the one before it is written, and a request holds at most two
/// chunks of prepared records however many it sent.
pub struct ChunkedWrite {
    pipeline: Pipeline,
    source: &'static str,
    in_flight: Option<(ChunkWrite, Vec<usize>)>,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
}

impl ChunkedWrite {
    pub fn new(pipeline: &Pipeline, source: &'static str) -> ChunkedWrite {
        ChunkedWrite {
            pipeline: pipeline.clone(),
            source,
            in_flight: None,
            accepted: 0,
            duplicates: 0,
            rejected: Vec::new(),
        }
    }

    /// Waits for the chunk before, then starts writing this one.
    pub async fn submit(&mut self, prepared: Prepared) -> Result<(), IngestError> {
        self.settle().await?;
        self.rejected.extend(prepared.rejections);
        let (pipeline, source) = (self.pipeline.clone(), self.source);
        let batch = prepared.batch;
        let write = tokio::spawn(async move { pipeline.write(batch, source).await });
        self.in_flight = Some((write, prepared.positions));
        Ok(())
    }

    /// Waits for the last chunk; the rejections in request order.
    pub async fn finish(mut self) -> Result<ChunkedWrite, IngestError> {
        self.settle().await?;
        self.rejected.sort_by_key(|r| r.index);
        Ok(self)
    }

    async fn settle(&mut self) -> Result<(), IngestError> {
        if let Some((write, positions)) = self.in_flight.take() {
            let committed = write.await.map_err(|_| IngestError::Closed)??;
            self.accepted += committed.accepted;
            self.duplicates += committed.duplicates;
            self.rejected.extend(committed.refusals(&positions));
        }
        Ok(())
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

/// What an intake prepared: the batch to write, the records it rejected, and per event
/// its position in the request or file (to place what the store refuses).
pub struct Prepared {
    pub batch: WriteBatch,
    pub rejections: Vec<Rejection>,
    pub positions: Vec<usize>,
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
    /// Per event of `batch`, its position in the request or file.
    positions: Vec<usize>,
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
            positions: Vec::new(),
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
        self.positions.push(index);
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
    pub fn take(&mut self) -> Prepared {
        Prepared {
            batch: std::mem::take(&mut self.batch),
            rejections: std::mem::take(&mut self.rejections),
            positions: std::mem::take(&mut self.positions),
        }
    }
}
