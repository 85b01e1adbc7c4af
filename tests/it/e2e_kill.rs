//! The real `llm-meter serve` binary following a log directory, killed with SIGKILL at
//! random moments while lines are appended and the file is rotated, and restarted: in
//! the end every line is counted exactly once.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::collector::{line, stored_requests};
use crate::helpers::spawn_serve;
use crate::store_contract::Backend;

async fn kill_and_restart_while_writing(backend: &Backend, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = dir.path().join("llm-meter.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\n\n[[collectors]]\nname = \"proxy\"\npaths = [\"{}/app.log*\"]\nproject = \"tail\"\npoll_interval = \"20ms\"\nrotate_wait = \"1h\"\n",
            backend.url(),
            logs.display()
        ),
    )
    .unwrap();

    // A writer appends whole lines (one write each) and rotates the file once, midway.
    let total_lines = 3000u64;
    let writing_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let logs = logs.clone();
        let done = writing_done.clone();
        std::thread::spawn(move || {
            for id in 0..total_lines {
                if id == total_lines / 2 {
                    std::fs::rename(logs.join("app.log"), logs.join("app.log.1")).unwrap();
                }
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(logs.join("app.log"))
                    .unwrap();
                file.write_all(format!("{}\n", line(id)).as_bytes())
                    .unwrap();
                // About six seconds of writing: several restarts of a debug build fit in.
                if id % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut rng = seed;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let store = backend.reopen().await;
    let mut kills = 0;
    // Kills that hit a daemon in the middle of the work: some lines in, not all.
    let mut kills_mid_ingest = 0;
    let mut daemon = spawn_serve(&config);
    while !writing_done.load(Ordering::SeqCst) || kills < 4 {
        // Let it run a random while, then kill it without warning. Two kills in three
        // first wait for it to store something (so they land mid-ingest whatever its
        // start-up takes); the third may land anywhere, start-up included.
        if kills % 3 != 2 {
            let before = stored_requests(store.as_ref(), "tail").await;
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline
                && stored_requests(store.as_ref(), "tail").await == before
                && before < total_lines
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(next() % 250)).await;
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        kills += 1;
        let stored = stored_requests(store.as_ref(), "tail").await;
        if stored > 0 && stored < total_lines {
            kills_mid_ingest += 1;
        }
        daemon = spawn_serve(&config);
        if kills > 40 {
            break;
        }
    }
    writer.join().unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stored = 0;
    while Instant::now() < deadline {
        stored = stored_requests(store.as_ref(), "tail").await;
        if stored >= total_lines {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(kills >= 4, "the daemon must actually be killed");
    assert!(
        kills_mid_ingest >= 2,
        "{kills_mid_ingest} of {kills} kills hit the daemon mid-ingest"
    );
    assert_eq!(
        stored,
        total_lines,
        "{}: every line once after {kills} kills",
        backend.name()
    );
    // The token sum proves no line was counted twice or partially.
    let rows = store
        .usage(&llm_meter::store::UsageQuery {
            from: "2026-04-01T00:00:00Z".parse().unwrap(),
            to: "2026-04-02T00:00:00Z".parse().unwrap(),
            group_by: vec![],
            filter: Default::default(),
            ..Default::default()
        })
        .await
        .unwrap();
    let want_input: u64 = (0..total_lines).map(|id| 100 + id).sum();
    assert_eq!(rows[0].tokens.input, want_input);
    assert!(
        store.dead_letters(5).await.unwrap().is_empty(),
        "no torn line was parsed"
    );
}

#[tokio::test]
async fn sigkill_at_random_moments_neither_loses_nor_doubles_a_line_on_sqlite() {
    kill_and_restart_while_writing(&Backend::sqlite().await, 0x5eed_1234).await;
}

#[tokio::test]
async fn sigkill_at_random_moments_neither_loses_nor_doubles_a_line_on_postgres() {
    kill_and_restart_while_writing(&Backend::postgres().await, 0xfeed_4321).await;
}
