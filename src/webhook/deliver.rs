//! The outbox worker: claims due deliveries under a lease, sends each target's in order,
//! keeps every attempt, and moves each delivery on: delivered, retried later, or expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use super::WebhookConfig;
use super::guard::TargetGuard;
use super::signing::{secret_key, sign};
use crate::metrics::Metrics;
use crate::store::{Delivery, DeliveryAttempt, DeliveryOutcome, Store, StoreError, WebhookFormat};

/// Longest part of a response body kept with an attempt.
const RESPONSE_BYTES: usize = 1024;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The wait before attempt `attempt + 1`: 2^(attempt-1) seconds, capped at an hour, with
/// full jitter over its upper half; at least what `Retry-After` asked, up to an hour.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(12)).min(MAX_BACKOFF);
    let jittered = base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    retry_after.map_or(jittered, |asked| jittered.max(asked.min(MAX_BACKOFF)))
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?.to_utc();
    (date - now).to_std().ok()
}

/// Drains the outbox until `stop` turns true.
pub struct Deliverer {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub client: reqwest::Client,
    pub guard: Arc<TargetGuard>,
    pub config: WebhookConfig,
    /// Woken when this daemon writes deliveries.
    pub wake: Arc<Notify>,
}

impl Deliverer {
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            match self.deliver_due().await {
                Ok(0) | Err(_) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = stop.changed() => return,
                    }
                }
                // More may be due: look again at once.
                Ok(_) => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Attempts every delivery due now (up to a batch); how many were attempted.
    pub async fn deliver_due(self: &Arc<Self>) -> Result<usize, StoreError> {
        // One target's claimed rows are sent one after another: the lease covers all of
        // them timing out, so no other daemon takes one over while it is still queued here.
        const CLAIM: u32 = 8;
        let lease = (self.config.timeout + Duration::from_secs(1)) * CLAIM + Duration::from_secs(5);
        let due = self
            .store
            .claim_deliveries(Utc::now(), CLAIM, lease)
            .await
            .inspect_err(
                |error| tracing::warn!(message = "Cannot read the webhook outbox.", %error),
            )?;
        let mut due = due;
        // UPDATE … RETURNING hands rows back in no particular order.
        due.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at, &a.id).cmp(&(b.next_attempt_at, b.created_at, &b.id))
        });
        let count = due.len();
        // One target's deliveries go one after another, in the order they were written
        // (alerts in threshold order); different targets in parallel.
        let mut by_target: Vec<(String, Vec<Delivery>)> = Vec::new();
        for delivery in due {
            match by_target.iter_mut().find(|(url, _)| *url == delivery.url) {
                Some((_, queue)) => queue.push(delivery),
                None => by_target.push((delivery.url.clone(), vec![delivery])),
            }
        }
        let mut attempts = tokio::task::JoinSet::new();
        for (_, queue) in by_target {
            let deliverer = self.clone();
            attempts.spawn(async move {
                for delivery in queue {
                    deliverer.attempt(delivery).await;
                }
            });
        }
        while attempts.join_next().await.is_some() {}
        Ok(count)
    }

    /// One attempt at one delivery, kept with its outcome.
    async fn attempt(&self, delivery: Delivery) {
        let number = delivery.attempts + 1;
        let started = Instant::now();
        let now = Utc::now();
        let answer = send(&self.client, &self.guard, &delivery, now).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let outcome = answer.outcome(number, Utc::now(), delivery.expires_at, jitter());
        let label = match outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry { .. } => "failed",
            DeliveryOutcome::Expired => "expired",
        };
        self.metrics
            .webhook_deliveries
            .with_label_values(&[label])
            .inc();
        let record = answer.into_attempt(&delivery.id, number, now, duration_ms);
        if let Some(error) = &record.error {
            tracing::warn!(message = "Webhook delivery failed.", id = %delivery.id, attempt = number, %error, outcome = label);
        }
        if let Err(error) = self.store.finish_attempt(&record, &outcome).await {
            // The lease runs out and the delivery is tried again: at least once, same id.
            tracing::warn!(message = "Cannot record a webhook attempt.", id = %delivery.id, %error);
        }
    }
}

/// What one attempt got back.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    /// The receiver took it (2xx).
    Accepted { status: u16, body: String },
    /// The receiver answered with another status, perhaps asking for a pause.
    Refused {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// No answer: the address was refused, or the connection failed or timed out.
    Unreachable { error: String },
}

impl Answer {
    /// Where the delivery goes after attempt `number`: delivered, retried after a backoff,
    /// or expired once the next try would fall after `expires_at`.
    fn outcome(
        &self,
        number: u32,
        finished: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        jitter: f64,
    ) -> DeliveryOutcome {
        let retry_after = match self {
            Answer::Accepted { .. } => return DeliveryOutcome::Delivered,
            Answer::Refused { retry_after, .. } => *retry_after,
            Answer::Unreachable { .. } => None,
        };
        let wait = backoff(number, retry_after, jitter);
        let at = finished + chrono::Duration::from_std(wait).unwrap_or_default();
        if at >= expires_at {
            DeliveryOutcome::Expired
        } else {
            DeliveryOutcome::Retry { at }
        }
    }

    /// The attempt as the store keeps it.
    fn into_attempt(
        self,
        delivery_id: &str,
        number: u32,
        at: DateTime<Utc>,
        duration_ms: u64,
    ) -> DeliveryAttempt {
        let (status_code, error, response) = match self {
            Answer::Accepted { status, body } => (Some(status), None, Some(body)),
            Answer::Refused { status, body, .. } => {
                (Some(status), Some(format!("HTTP {status}")), Some(body))
            }
            Answer::Unreachable { error } => (None, Some(error), None),
        };
        DeliveryAttempt {
            delivery_id: delivery_id.to_owned(),
            attempt: number,
            at,
            status_code,
            duration_ms,
            error,
            response,
        }
    }
}

/// A number in [0, 1) from the system's randomness.
fn jitter() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let value = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    (value >> 11) as f64 / (1u64 << 53) as f64
}

async fn send(
    client: &reqwest::Client,
    guard: &TargetGuard,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Answer {
    match post(client, guard, delivery, now).await {
        Ok(answer) => answer,
        Err(error) => Answer::Unreachable { error },
    }
}

async fn post(
    client: &reqwest::Client,
    guard: &TargetGuard,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Result<Answer, String> {
    let url = guard.check_url(&delivery.url)?;
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(delivery.body.clone());
    if delivery.format == WebhookFormat::Json {
        let timestamp = now.timestamp();
        request = request
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = &delivery.secret {
            let key = secret_key(secret)?;
            request = request.header(
                "webhook-signature",
                sign(&key, &delivery.id, timestamp, &delivery.body),
            );
        }
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| describe(e, &delivery.url))?;
    let status = response.status();
    let retry_after = retry_after(response.headers(), now);
    // Keep the start of the answer for the attempt log; never read more than that.
    let mut body = Vec::new();
    while body.len() < RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let body = String::from_utf8_lossy(&body);
    let body = crate::usage::truncate_utf8(&body, RESPONSE_BYTES).to_owned();
    let status = status.as_u16();
    Ok(if (200..300).contains(&status) {
        Answer::Accepted { status, body }
    } else {
        Answer::Refused {
            status,
            body,
            retry_after,
        }
    })
}

/// A reqwest error with its causes, on one line, without the target's URL: a Slack or
/// Discord URL is itself a credential, and this text is stored and shown to readers.
fn describe(error: reqwest::Error, url: &str) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    redact_target(&text, url)
}

/// `text` with the target URL, and its path, replaced by the host alone.
pub fn redact_target(text: &str, url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return text.replace(url, "…");
    };
    let host = format!(
        "{}://{}/…",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    let mut text = text.replace(url, &host).replace(parsed.as_str(), &host);
    let path = parsed.path();
    if path.len() > 1 {
        text = text.replace(path, "/…");
    }
    if let Some(query) = parsed.query() {
        text = text.replace(query, "…");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_errors_lose_the_target_url_its_path_and_query() {
        let url = "https://hooks.slack.com/services/T0/B0/TOKEN?key=Q";
        for text in [
            format!("error sending request for url ({url}): timed out"),
            "GET /services/T0/B0/TOKEN?key=Q failed".to_owned(),
        ] {
            let redacted = redact_target(&text, url);
            assert!(
                !redacted.contains("TOKEN") && !redacted.contains("key=Q"),
                "{redacted}"
            );
        }
        assert_eq!(
            redact_target(&format!("for url ({url})"), url),
            "for url (https://hooks.slack.com/…)"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        assert_eq!(backoff(1, None, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, None, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(4, None, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(30, None, 1.0), MAX_BACKOFF);
        assert_eq!(
            backoff(1, Some(Duration::from_secs(120)), 0.5),
            Duration::from_secs(120)
        );
        assert_eq!(
            backoff(1, Some(Duration::from_secs(999_999)), 0.5),
            MAX_BACKOFF
        );
        let now = Utc::now();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let later = (now + chrono::Duration::seconds(90)).to_rfc2822();
        headers.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        let parsed = retry_after(&headers, now).unwrap();
        assert!(parsed <= Duration::from_secs(90) && parsed >= Duration::from_secs(89));
    }

    #[test]
    fn answers_move_a_delivery_on() {
        let finished = Utc::now();
        let expires = finished + chrono::Duration::hours(1);
        let accepted = Answer::Accepted {
            status: 204,
            body: String::new(),
        };
        assert_eq!(
            accepted.outcome(3, finished, expires, 0.5),
            DeliveryOutcome::Delivered
        );
        let refused = Answer::Refused {
            status: 503,
            body: "busy".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            refused.outcome(1, finished, expires, 0.0),
            DeliveryOutcome::Retry {
                at: finished + chrono::Duration::seconds(30)
            }
        );
        // A retry that would fall after the expiry gives up.
        assert_eq!(
            refused.outcome(1, finished, finished + chrono::Duration::seconds(10), 0.0),
            DeliveryOutcome::Expired
        );
        let attempt = refused.into_attempt("msg_1", 1, finished, 12);
        assert_eq!(attempt.status_code, Some(503));
        assert_eq!(attempt.error.as_deref(), Some("HTTP 503"));
        assert_eq!(attempt.response.as_deref(), Some("busy"));
        let unreachable = Answer::Unreachable {
            error: "connection refused".into(),
        };
        let attempt = unreachable.into_attempt("msg_1", 2, finished, 3);
        assert_eq!((attempt.status_code, attempt.response), (None, None));
    }
}
