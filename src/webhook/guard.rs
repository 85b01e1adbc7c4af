//! The guard against server-side request forgery: webhook targets in loopback, private,
//! link-local and other non-public ranges are refused unless allowed by name or range,
//! when a URL is saved and again on every address a name resolves to at connect time.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

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
        // `localhost.` is `localhost`: a name is the same with its root dot.
        let host = host.trim_end_matches('.').to_ascii_lowercase();
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
                let bare = name.trim_end_matches('.').to_ascii_lowercase();
                if !self.host_allowed(name) && (bare == "localhost" || bare.ends_with(".localhost"))
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
            if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
                return is_public(embedded(segments[6], segments[7])); // IPv4-translated
            }
            let first = segments[0];
            !(v6.is_loopback()
                || (first == 0x2001 && segments[1] == 0) // Teredo: tunnels to any IPv4
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                || segments[..3] == [0x64, 0xff9b, 1] // local-use NAT64
                || segments[..4] == [0x100, 0, 0, 0] // discard-only
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

#[cfg(test)]
mod tests {
    use super::*;

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
            "http://localhost./",
            "http://LOCALHOST.:80/",
            "http://app.localhost./",
            "http://[::ffff:0:7f00:1]/",
            "http://[::ffff:0:a00:1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[2001:db8::1]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[100::1]/",
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
            "http://localhost./",
        ] {
            assert!(allowing.check_url(url).is_ok(), "{url}");
        }
        assert!(allowing.check_url("http://192.168.1.1/").is_err());
        assert!(allowing.host_allowed("HOOKS.internal"));
        assert!(TargetGuard::new(&["not a host/".into()]).is_err());
    }
}
