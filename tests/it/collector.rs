//! The tailer, driven through random sequences of file operations and restarts, checked
//! against a model of exactly which lines must be counted.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use llm_meter::collect::{Collector, CollectorConfig, StartAt};
use llm_meter::ingest::{Pipeline, PipelineConfig};
use llm_meter::metrics::Metrics;
use llm_meter::store::{Dimension, Store, UsageFilter, UsageQuery};

use crate::helpers::Rng;
use crate::store_contract::Backend;

pub fn collector_config(dir: &Path, name: &str) -> CollectorConfig {
    CollectorConfig {
        name: name.into(),
        paths: vec![format!("{}/app.log*", dir.display())],
        format: "auto".into(),
        project: Some("tail".into()),
        project_field: None,
        tags: Default::default(),
        start_at: StartAt::Beginning,
        max_line_bytes: 1 << 20,
        poll_interval: Duration::from_millis(10),
        rotate_wait: Duration::ZERO,
        batch_lines: 7,
    }
}

pub fn line(id: u64) -> String {
    format!(
        r#"{{"id":"L{id}","time":"2026-04-01T10:00:00Z","provider":"openai","model":"gpt-5.2","tokens":{{"input":{},"output":1}}}}"#,
        100 + id
    )
}

/// The ids the store holds for a project, from the event-backed usage query.
pub async fn stored_requests(store: &dyn Store, project: &str) -> u64 {
    let rows = store
        .usage(&UsageQuery {
            from: "2026-04-01T00:00:00Z".parse().unwrap(),
            to: "2026-04-02T00:00:00Z".parse().unwrap(),
            group_by: vec![Dimension::Project],
            filter: UsageFilter {
                projects: Some(vec![project.into()]),
                ..UsageFilter::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    rows.first().map_or(0, |r| r.requests)
}

/// Files of the model: the live file and the rotated ones.
struct Files {
    dir: PathBuf,
    next_id: u64,
    next_rotation: u64,
    /// A line written without its newline yet (on app.log).
    partial: Option<String>,
    /// Every complete line written: what must be counted.
    expected: BTreeSet<String>,
    /// Rotated files present at the last poll (read to their end then).
    read_rotations: Vec<PathBuf>,
}

impl Files {
    fn live(&self) -> PathBuf {
        self.dir.join("app.log")
    }

    fn append(&mut self, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.live())
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn complete_partial(&mut self) {
        if let Some(line) = self.partial.take() {
            let half = line.len() / 2;
            self.append(&format!("{}\n", &line[half..]));
            self.expected.insert(line);
        }
    }

    fn append_lines(&mut self, count: u64) {
        self.complete_partial();
        let mut text = String::new();
        for _ in 0..count {
            let line = line(self.next_id);
            self.next_id += 1;
            text.push_str(&line);
            text.push('\n');
            self.expected.insert(line);
        }
        self.append(&text);
    }

    fn append_partial(&mut self) {
        if self.partial.is_some() {
            return;
        }
        let line = line(self.next_id);
        self.next_id += 1;
        self.append(&line[..line.len() / 2]);
        self.partial = Some(line);
    }

    fn rotated_name(&mut self) -> PathBuf {
        self.next_rotation += 1;
        self.dir.join(format!("app.log.{}", self.next_rotation))
    }

    fn rotate_by_rename(&mut self) {
        self.complete_partial();
        if self.live().exists() {
            let target = self.rotated_name();
            std::fs::rename(self.live(), target).unwrap();
        }
        std::fs::File::create(self.live()).unwrap();
    }

    fn copytruncate(&mut self) {
        self.complete_partial();
        if !self.live().exists() {
            return;
        }
        let target = self.rotated_name();
        std::fs::copy(self.live(), target).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.live())
            .unwrap();
    }

    fn rotated_plain(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("app.log.") && !name.ends_with(".gz")
            })
            .collect();
        found.sort();
        found
    }

    fn compress(&mut self, rng: &mut Rng) {
        let candidates = self.rotated_plain();
        if candidates.is_empty() {
            return;
        }
        let path = &candidates[rng.below(candidates.len())];
        let gz = PathBuf::from(format!("{}.gz", path.display()));
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        encoder.write_all(&std::fs::read(path).unwrap()).unwrap();
        encoder.finish().unwrap();
        std::fs::remove_file(path).unwrap();
    }

    fn delete_read_rotation(&mut self, rng: &mut Rng) {
        let present: Vec<PathBuf> = self
            .read_rotations
            .iter()
            .filter(|p| p.exists())
            .cloned()
            .collect();
        if let Some(path) = present.get(rng.below(present.len())) {
            std::fs::remove_file(path).unwrap();
        }
    }

    fn note_poll(&mut self) {
        self.read_rotations = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("app.log.")
            })
            .collect();
    }
}

async fn run_model(backend: &Backend, seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.store();
    let book = Arc::new(crate::helpers::book().clone());
    let metrics = Arc::new(Metrics::new());
    let (pipeline, batcher) =
        Pipeline::start(store.clone(), PipelineConfig::default(), metrics.clone());
    let new_collector = || {
        Collector::new(
            collector_config(dir.path(), "model"),
            book.clone(),
            pipeline.clone(),
            store.clone(),
            metrics.clone(),
        )
    };
    let mut collector = new_collector().await.unwrap();
    let mut files = Files {
        dir: dir.path().to_owned(),
        next_id: 0,
        next_rotation: 0,
        partial: None,
        expected: BTreeSet::new(),
        read_rotations: Vec::new(),
    };
    let mut rng = Rng(seed);
    let mut accepted = 0;
    let mut duplicates = 0;
    let mut script = Vec::new();
    for _ in 0..steps {
        let op = rng.below(100);
        match op {
            0..=29 => {
                let n = 1 + rng.below(15) as u64;
                script.push(format!("append {n}"));
                files.append_lines(n);
            }
            30..=39 => {
                script.push("partial".into());
                files.append_partial();
            }
            40..=47 => {
                script.push("rotate".into());
                files.rotate_by_rename();
            }
            48..=54 => {
                script.push("copytruncate".into());
                files.copytruncate();
            }
            55..=61 => {
                script.push("compress".into());
                files.compress(&mut rng);
            }
            62..=67 => {
                script.push("delete".into());
                files.delete_read_rotation(&mut rng);
            }
            68..=75 => {
                script.push("restart".into());
                collector = new_collector().await.unwrap();
            }
            _ => {
                script.push("poll".into());
                let outcome = collector.poll_once().await.unwrap();
                accepted += outcome.accepted;
                duplicates += outcome.duplicates;
                files.note_poll();
            }
        }
    }
    files.complete_partial();
    for _ in 0..3 {
        let outcome = collector.poll_once().await.unwrap();
        accepted += outcome.accepted;
        duplicates += outcome.duplicates;
    }
    drop(collector);
    drop(pipeline);
    batcher.await.unwrap();

    let at = format!("{} seed {seed}: {}", backend.name(), script.join(", "));
    let want = files.expected.len() as u64;
    assert_eq!(accepted, want, "{at}");
    assert_eq!(duplicates, 0, "{at}: no line read twice");
    assert_eq!(stored_requests(store.as_ref(), "tail").await, want, "{at}");
    assert!(
        store.dead_letters(5).await.unwrap().is_empty(),
        "{at}: no partial line parsed"
    );
}

#[tokio::test]
async fn random_rotations_truncations_deletions_and_restarts_count_every_line_once() {
    for seed in 1..=40u64 {
        let backend = Backend::sqlite().await;
        run_model(&backend, seed * 7919, 60).await;
    }
    for seed in 1..=6u64 {
        let backend = Backend::postgres().await;
        run_model(&backend, seed * 104_729, 60).await;
    }
}

#[tokio::test]
async fn start_at_end_skips_existing_content_but_not_what_comes_after() {
    let backend = Backend::sqlite().await;
    let store = backend.store();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.log"),
        format!("{}\n{}\n", line(1), line(2)),
    )
    .unwrap();
    let (pipeline, batcher) = Pipeline::start(
        store.clone(),
        PipelineConfig::default(),
        Arc::new(Metrics::new()),
    );
    let config = CollectorConfig {
        start_at: StartAt::End,
        ..collector_config(dir.path(), "end")
    };
    let book = Arc::new(crate::helpers::book().clone());
    let mut collector = Collector::new(
        config.clone(),
        book.clone(),
        pipeline.clone(),
        store.clone(),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    assert_eq!(collector.poll_once().await.unwrap().accepted, 0);
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("app.log"))
        .unwrap()
        .write_all(format!("{}\n", line(3)).as_bytes())
        .unwrap();
    // A restart in between must not jump to the (new) end.
    let mut collector_again = Collector::new(
        config,
        book,
        pipeline.clone(),
        store.clone(),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    drop(collector);
    assert_eq!(collector_again.poll_once().await.unwrap().accepted, 1);
    // A file that appears while running is read from its start.
    std::fs::write(dir.path().join("app.log.9"), format!("{}\n", line(4))).unwrap();
    assert_eq!(collector_again.poll_once().await.unwrap().accepted, 1);
    drop(collector_again);
    drop(pipeline);
    batcher.await.unwrap();
    assert_eq!(stored_requests(store.as_ref(), "tail").await, 2);
}

#[tokio::test]
async fn long_lines_are_dead_lettered_and_pointers_set_project_and_tags() {
    let backend = Backend::sqlite().await;
    let store = backend.store();
    let dir = tempfile::tempdir().unwrap();
    let wrapped = |id: u64, project: &str| {
        format!(
            r#"{{"metadata":{{"project":"{project}","env":"prod"}},"response":{}}}"#,
            line(id)
        )
    };
    let long = format!(r#"{{"id":"big","pad":"{}"}}"#, "x".repeat(3000));
    std::fs::write(
        dir.path().join("app.log"),
        format!("{}\n{long}\n{}\n", wrapped(1, "alpha"), wrapped(2, "beta")),
    )
    .unwrap();
    let config = CollectorConfig {
        max_line_bytes: 1000,
        project_field: Some("/metadata/project".into()),
        tags: [("env".to_owned(), "/metadata/env".to_owned())]
            .into_iter()
            .collect(),
        ..collector_config(dir.path(), "pointers")
    };
    let (pipeline, batcher) = Pipeline::start(
        store.clone(),
        PipelineConfig::default(),
        Arc::new(Metrics::new()),
    );
    let metrics = Arc::new(Metrics::new());
    let mut collector = Collector::new(
        config,
        Arc::new(crate::helpers::book().clone()),
        pipeline.clone(),
        store.clone(),
        metrics.clone(),
    )
    .await
    .unwrap();
    let outcome = collector.poll_once().await.unwrap();
    assert_eq!((outcome.accepted, outcome.rejected), (2, 1));
    assert_eq!(stored_requests(store.as_ref(), "alpha").await, 1);
    assert_eq!(stored_requests(store.as_ref(), "beta").await, 1);
    let letters = store.dead_letters(5).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].code, "line_too_long");
    assert!(
        letters[0]
            .reason
            .contains("line of 3021 bytes is longer than 1000 bytes"),
        "{}",
        letters[0].reason
    );
    assert!(
        letters[0].source.contains("collector pointers"),
        "{}",
        letters[0].source
    );
    let rendered = metrics.render();
    assert!(
        rendered
            .contains(r#"llm_meter_collector_lines_total{collector="pointers",outcome="read"} 3"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"llm_meter_collector_lag_bytes{collector="pointers"} 0"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"llm_meter_collector_files_watched{collector="pointers"} 1"#),
        "{rendered}"
    );
    drop(collector);
    drop(pipeline);
    batcher.await.unwrap();
}

#[tokio::test]
async fn a_store_outage_stops_reading_and_ends_with_exact_totals() {
    let backend = Backend::postgres().await;
    let Backend::Postgres { db, .. } = &backend else {
        unreachable!()
    };
    let store = backend.store();
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, batcher) = Pipeline::start(
        store.clone(),
        PipelineConfig::default(),
        Arc::new(Metrics::new()),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let collector = Collector::new(
        collector_config(dir.path(), "outage"),
        Arc::new(crate::helpers::book().clone()),
        pipeline.clone(),
        store.clone(),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    let running = tokio::spawn(collector.run(stopped));
    let mut files = Files {
        dir: dir.path().to_owned(),
        next_id: 0,
        next_rotation: 0,
        partial: None,
        expected: BTreeSet::new(),
        read_rotations: Vec::new(),
    };
    files.append_lines(50);
    // Wait (polling, not sleeping blindly) until the first lines are in.
    for _ in 0..200 {
        if stored_requests(store.as_ref(), "tail").await == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_requests(store.as_ref(), "tail").await, 50);
    db.allow_connections(false).await;
    files.append_lines(300);
    files.rotate_by_rename();
    files.append_lines(200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.allow_connections(true).await;
    let want = files.expected.len() as u64;
    let mut stored = 0;
    for _ in 0..500 {
        stored = stored_requests(store.as_ref(), "tail").await;
        if stored == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored, want, "every line, once, after the outage");
    stop.send(true).unwrap();
    running.await.unwrap();
    drop(pipeline);
    batcher.await.unwrap();
}
