//! Webhook delivery: Standard Webhooks signatures, the guard against server-side request
//! forgery, and the worker that drains the outbox.
//!
//! Deliveries are rows written in the same transaction as the alert that caused them. Any
//! daemon may deliver one: it leases the row, POSTs it, keeps the attempt, and either
//! marks it delivered or schedules a retry (exponential backoff with jitter, honouring
//! `Retry-After`) until it expires. A daemon that dies mid-attempt lets its lease run out
//! and another retries, with the same `webhook-id`: receivers drop repeats by that id.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::{Notify, watch};

use crate::metrics::Metrics;
use crate::store::{Delivery, DeliveryAttempt, DeliveryOutcome, Store, WebhookFormat};

/// `[webhooks]` in the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Hosts (`hooks.internal`) or ranges (`10.0.0.0/8`, `127.0.0.1`) that may be targets
    /// although they are loopback, private or link-local.
    #[serde(default)]
    pub allow: Vec<String>,
    /// How long one attempt may take.
    #[serde(default = "default_timeout", with = "crate::duration_text")]
    pub timeout: Duration,
    /// How long a delivery is retried before it is given up.
    #[serde(default = "default_expire_after", with = "crate::duration_text")]
    pub expire_after: Duration,
    /// How often the outbox is looked at when nothing wakes the worker (other daemons'
    /// alerts, retries coming due).
    #[serde(default = "default_poll_interval", with = "crate::duration_text")]
    pub poll_interval: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_expire_after() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow: Vec::new(),
            timeout: default_timeout(),
            expire_after: default_expire_after(),
            poll_interval: default_poll_interval(),
        }
    }
}

/// The key of a `whsec_…` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("must start with whsec_")?;
    let key = BASE64
        .decode(encoded)
        .map_err(|_| "is not whsec_ followed by base64".to_owned())?;
    if key.len() < 16 || key.len() > 64 {
        return Err("its key must be 16 to 64 bytes".into());
    }
    Ok(key)
}

/// A new random secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("whsec_{}", BASE64.encode(bytes))
}

/// The Standard Webhooks signature of a message: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// One entry of `[webhooks] allow`.
#[derive(Clone, Debug, PartialEq)]
enum Allowed {
    Range(IpNet),
    Host(String),
}

/// Refuses targets in loopback, private, link-local and other non-public ranges, unless
/// allowed by name or range.
#[derive(Clone, Debug, Default)]
pub struct TargetGuard {
    allowed: Vec<Allowed>,
}

impl TargetGuard {
    pub fn new(allow: &[String]) -> Result<TargetGuard, String> {
        let allowed = allow
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                if let Ok(net) = IpNet::from_str(entry) {
                    Ok(Allowed::Range(net))
                } else if let Ok(ip) = IpAddr::from_str(entry) {
                    Ok(Allowed::Range(IpNet::from(ip)))
                } else if !entry.is_empty() && !entry.contains(['/', ' ', ':']) {
                    Ok(Allowed::Host(entry.to_ascii_lowercase()))
                } else {
                    Err(format!(
                        "webhooks.allow: {entry:?} is not a host, address or range"
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(TargetGuard { allowed })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed
            .iter()
            .any(|a| matches!(a, Allowed::Host(h) if *h == host))
    }

    /// Whether an address may be connected to.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        is_public(ip)
            || self
                .allowed
                .iter()
                .any(|a| matches!(a, Allowed::Range(net) if net.contains(&ip)))
    }

    /// Checks a URL before any connection: its scheme, and its host when that is an
    /// address (names are checked as they resolve, see `GuardedResolver`).
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("only http and https targets".into());
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(name)) => {
                if !self.host_allowed(name) && (name == "localhost" || name.ends_with(".localhost"))
                {
                    return Err(format!(
                        "{name} is loopback; allow it with [webhooks] allow = [\"{name}\"]"
                    ));
                }
            }
            None => return Err("the URL has no host".into()),
        }
        Ok(url)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.address_allowed(ip) {
            Ok(())
        } else {
            Err(format!(
                "{ip} is a loopback, private or link-local address; allow it with [webhooks] allow = [\"{ip}\"]"
            ))
        }
    }
}

/// Not loopback, private, link-local, unspecified, multicast, documentation or shared.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| {
                IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(high) << 16) | u32::from(low),
                ))
            };
            // Addresses that carry an IPv4 address reach it: judge that one.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(embedded(segments[6], segments[7])); // NAT64
            }
            if segments[0] == 0x2002 {
                return is_public(embedded(segments[1], segments[2])); // 6to4
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || segments[..6] == [0; 6] // IPv4-compatible (deprecated)
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0) // site-local (deprecated)
        }
    }
}

/// Resolves names and keeps only the addresses the guard allows (all of them for a host
/// allowed by name), so a name cannot be pointed at an internal address, even by
/// changing its DNS between the check and the connection.
struct GuardedResolver(Arc<TargetGuard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let by_name = guard.host_allowed(&host);
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| by_name || guard.address_allowed(address.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!(
                    "{host} resolves only to loopback, private or link-local addresses; \
                     allow it with [webhooks] allow = [\"{host}\"]"
                )
                .into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client for webhook targets: guarded DNS, a timeout, and redirects followed
/// only within the same host.
pub fn client(guard: Arc<TargetGuard>, timeout: Duration) -> reqwest::Client {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        // Same scheme, host and port: no downgrade to http, no hop to another service.
        let same_host = attempt.previous().first().is_some_and(|first| {
            let next = attempt.url();
            first.scheme() == next.scheme()
                && first.host_str() == next.host_str()
                && first.port_or_known_default() == next.port_or_known_default()
        });
        if same_host && attempt.previous().len() < 5 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        // A proxy would resolve the target itself, past the guard: none, whatever the
        // environment's HTTP(S)_PROXY says.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver(guard)))
        .redirect(redirects)
        .timeout(timeout)
        .user_agent(concat!("llm-meter/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain HTTP client builds")
}

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
    pub async fn deliver_due(self: &Arc<Self>) -> Result<usize, crate::store::StoreError> {
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
        let sent = send(&self.client, &self.guard, &delivery, now).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let (status_code, error, response, retry_after) = match sent {
            Ok((status, headers, body)) => {
                let error = (!status.is_success()).then(|| format!("HTTP {}", status.as_u16()));
                (
                    Some(status.as_u16()),
                    error,
                    Some(body),
                    retry_after(&headers, now),
                )
            }
            Err(error) => (None, Some(error), None, None),
        };
        let finished = Utc::now();
        let outcome = if error.is_none() {
            DeliveryOutcome::Delivered
        } else {
            let wait = backoff(number, retry_after, jitter());
            let at = finished + chrono::Duration::from_std(wait).unwrap_or_default();
            if at >= delivery.expires_at {
                DeliveryOutcome::Expired
            } else {
                DeliveryOutcome::Retry { at }
            }
        };
        let label = match outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry { .. } => "failed",
            DeliveryOutcome::Expired => "expired",
        };
        self.metrics
            .webhook_deliveries
            .with_label_values(&[label])
            .inc();
        if let Some(error) = &error {
            tracing::warn!(message = "Webhook delivery failed.", id = %delivery.id, attempt = number, %error, outcome = label);
        }
        let record = DeliveryAttempt {
            delivery_id: delivery.id.clone(),
            attempt: number,
            at: now,
            status_code,
            duration_ms,
            error,
            response,
        };
        if let Err(error) = self.store.finish_attempt(&record, &outcome).await {
            // The lease runs out and the delivery is tried again: at least once, same id.
            tracing::warn!(message = "Cannot record a webhook attempt.", id = %delivery.id, %error);
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
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), String> {
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
    let response = request.send().await.map_err(|e| describe(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    // Keep the start of the answer for the attempt log; never read more than that.
    let mut response = response;
    let mut body = Vec::new();
    while body.len() < RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let body = String::from_utf8_lossy(&body);
    Ok((
        status,
        headers,
        crate::usage::truncate_utf8(&body, RESPONSE_BYTES).to_owned(),
    ))
}

/// A reqwest error with its causes, on one line.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The Standard Webhooks specification's example.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret_key("nope").is_err());
        assert!(secret_key("whsec_!!").is_err());
        assert!(secret_key(&new_secret()).is_ok());
    }

    #[test]
    fn internal_targets_are_refused_unless_allowed() {
        let guard = TargetGuard::default();
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a00:1::]/",
            "http://[::127.0.0.1]/",
            "http://[fec0::1]/",
            "http://192.0.0.170/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://localhost:8080/",
            "ftp://example.com/",
        ] {
            assert!(guard.check_url(url).is_err(), "{url}");
        }
        for url in [
            "https://hooks.slack.com/services/x",
            "http://8.8.8.8/",
            "https://[2001:4860::8888]/",
            "http://[64:ff9b::808:808]/",
        ] {
            assert!(guard.check_url(url).is_ok(), "{url}");
        }
        let allowing = TargetGuard::new(&[
            "127.0.0.1".into(),
            "10.0.0.0/8".into(),
            "hooks.internal".into(),
            "localhost".into(),
        ])
        .unwrap();
        for url in [
            "http://127.0.0.1:9000/",
            "http://10.9.9.9/",
            "http://localhost/",
        ] {
            assert!(allowing.check_url(url).is_ok(), "{url}");
        }
        assert!(allowing.check_url("http://192.168.1.1/").is_err());
        assert!(allowing.host_allowed("HOOKS.internal"));
        assert!(TargetGuard::new(&["not a host/".into()]).is_err());
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
}
