//! API tokens: making them, checking them, and what each role and project scope may do.
//!
//! A token reads `lmt_<id>_<secret>`. The id is public (it names the token in lists and
//! logs); only a SHA-256 hash of the whole token is stored, compared in constant time.
//! Tokens are 60 random bits of id and 244 of secret, so a fast hash is enough: there is
//! nothing to brute-force the way there is with passwords.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::store::Role;
use crate::store::{Store, StoreError, StoredToken};

pub const TOKEN_PREFIX: &str = "lmt_";

/// A token given in the config (`[[tokens]]`): for GitOps, only its hash is written there.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigToken {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub role: String,
    #[serde(default)]
    pub projects: Vec<String>,
    /// `sha256:<hex>` of the whole token, as `token create --config` prints it.
    pub hash: String,
}

impl ConfigToken {
    /// Checks the entry; the error names the token.
    pub fn to_stored(&self) -> Result<StoredToken, String> {
        let fail = |message: &str| format!("token {:?}: {message}", self.id);
        if !is_token_id(&self.id) {
            return Err(fail("id must be 16 lowercase hex digits"));
        }
        let role =
            Role::parse(&self.role).ok_or_else(|| fail("role must be admin, ingest or read"))?;
        let hash = self
            .hash
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| fail("hash must be sha256: and 64 hex digits"))?;
        check_projects(&self.projects).map_err(|e| fail(&e))?;
        Ok(StoredToken {
            id: self.id.clone(),
            name: self.name.clone().unwrap_or_else(|| "config".into()),
            role,
            projects: self.projects.clone(),
            hash: hash.to_ascii_lowercase(),
            created_at: DateTime::UNIX_EPOCH,
            expires_at: None,
            revoked_at: None,
        })
    }
}

pub fn check_projects(projects: &[String]) -> Result<(), String> {
    // Queries split project lists on commas and trim them: a scope must read the same,
    // by the same rule records are held to.
    for project in projects {
        crate::usage::check_project("project", project)
            .map_err(|e| format!("{e} (one project per --project)"))?;
    }
    Ok(())
}

fn is_token_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Hex SHA-256 of a whole token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token: the text to show once, and the row to store.
pub fn generate(
    role: Role,
    projects: Vec<String>,
    name: String,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (String, StoredToken) {
    let id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8]);
    let mut secret = Vec::with_capacity(32);
    secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let token = format!("{TOKEN_PREFIX}{id}_{}", hex::encode(secret));
    let stored = StoredToken {
        id,
        name,
        role,
        projects,
        hash: hash(&token),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    (token, stored)
}

/// The id part of a presented token, if it has the shape of one.
fn token_id(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    (is_token_id(id) && !secret.is_empty() && secret.len() <= 256).then_some(id)
}

/// Who is asking, once their token checked out.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    /// `None` when no token is needed (no token exists).
    pub token_id: Option<String>,
    pub role: Role,
    /// `None`: every project.
    pub projects: Option<Arc<BTreeSet<String>>>,
}

/// A project this principal may not touch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("this token may not access project {0:?}")]
pub struct ForbiddenProject(pub String);

impl Principal {
    /// Anyone, when no token is configured.
    pub fn open() -> Principal {
        Principal {
            token_id: None,
            role: Role::Admin,
            projects: None,
        }
    }

    fn from_token(token: &StoredToken) -> Option<Principal> {
        Some(Principal {
            token_id: Some(token.id.clone()),
            role: token.role,
            projects: (!token.projects.is_empty())
                .then(|| Arc::new(token.projects.iter().cloned().collect())),
        })
    }

    pub fn may_access(&self, project: &str) -> bool {
        self.projects.as_ref().is_none_or(|p| p.contains(project))
    }

    /// A query's project filter, narrowed to this principal's projects: a project outside
    /// them is refused; no filter becomes "my projects". Filter values may be
    /// comma-separated lists.
    pub fn scope(&self, requested: Vec<String>) -> Result<Vec<String>, ForbiddenProject> {
        let Some(allowed) = &self.projects else {
            return Ok(requested);
        };
        // The list the query will use, read by the query's own reader: an empty or blank
        // value is no filter, which for a scoped caller means its own projects.
        let projects = crate::report::params::project_list(&requested);
        if projects.is_empty() {
            return Ok(allowed.iter().cloned().collect());
        }
        if let Some(outside) = projects.iter().find(|p| !allowed.contains(p.as_str())) {
            return Err(ForbiddenProject(outside.clone()));
        }
        Ok(projects)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required (Authorization: Bearer lmt_…)")]
    Missing,
    #[error("the token is not valid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks bearer tokens against the config's and the store's.
pub struct Authenticator {
    store: Arc<dyn Store>,
    config_tokens: HashMap<String, StoredToken>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, config_tokens: &[ConfigToken]) -> Result<Self, String> {
        let mut by_id = HashMap::new();
        for token in config_tokens {
            let stored = token.to_stored()?;
            if by_id.insert(stored.id.clone(), stored).is_some() {
                return Err(format!("token {:?} is listed twice", token.id));
            }
        }
        Ok(Authenticator {
            store,
            config_tokens: by_id,
        })
    }

    /// Whether requests need a token: once any token was made, they do, also after every
    /// token was revoked or expired (the API never falls back open).
    pub async fn required(&self) -> Result<bool, StoreError> {
        Ok(!self.config_tokens.is_empty() || self.store.any_token().await?)
    }

    /// Who presents `bearer` (the `Authorization` header's token, if any).
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Principal, AuthError> {
        let Some(presented) = bearer else {
            return if self.required().await? {
                Err(AuthError::Missing)
            } else {
                Ok(Principal::open())
            };
        };
        let id = token_id(presented).ok_or(AuthError::Invalid)?;
        let stored = match self.config_tokens.get(id) {
            Some(token) => token.clone(),
            None => self.store.token(id).await?.ok_or(AuthError::Invalid)?,
        };
        let matches: bool = stored
            .hash
            .as_bytes()
            .ct_eq(hash(presented).as_bytes())
            .into();
        if !matches {
            return Err(AuthError::Invalid);
        }
        if stored.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if stored.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::Expired);
        }
        Principal::from_token(&stored).ok_or(AuthError::Invalid)
    }
}

/// Clients that keep failing authentication: after `per_minute` failures within a minute,
/// an address is refused (429) before any token of it is looked up, until that minute is
/// over. Keeps a flood of bad tokens from tying up the store.
/// Failed authentications per minute, counted per address *and* presented token id
/// (`lmt_<id>_…`; one shared key for anything else). Past the limit a failure is answered
/// 429 instead of 401; a good token is never held off (behind a proxy every client
/// shares one address), and one client's failures do not count against another token.
pub struct FailedAuth {
    per_minute: u32,
    windows: std::sync::Mutex<HashMap<(std::net::IpAddr, String), (std::time::Instant, u32)>>,
}

const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Most (address, token id) keys remembered at once.
const MAX_FAILURE_KEYS: usize = 50_000;

impl FailedAuth {
    pub fn new(per_minute: u32) -> FailedAuth {
        FailedAuth {
            per_minute: per_minute.max(1),
            windows: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The key failures are counted under: the address and the token id presented.
    fn key(ip: std::net::IpAddr, bearer: Option<&str>) -> (std::net::IpAddr, String) {
        let id = bearer.and_then(token_id).unwrap_or_default();
        (ip, id.to_owned())
    }

    /// Seconds to wait, when `ip` has failed too often this minute with this token.
    pub fn blocked(
        &self,
        ip: std::net::IpAddr,
        bearer: Option<&str>,
        now: std::time::Instant,
    ) -> Option<u64> {
        let windows = self.windows.lock().ok()?;
        // The token's own key, and the address's shared one (where failures go once the
        // table is full of fresh keys).
        let key = Self::key(ip, bearer);
        [key.clone(), (ip, String::new())]
            .iter()
            .filter_map(|key| windows.get(key))
            .filter(|(_, failures)| *failures >= self.per_minute)
            .filter_map(|(started, _)| FAILURE_WINDOW.checked_sub(now.duration_since(*started)))
            .map(|left| left.as_secs().max(1))
            .max()
    }

    pub fn failed(&self, ip: std::net::IpAddr, bearer: Option<&str>, now: std::time::Instant) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        if windows.len() >= MAX_FAILURE_KEYS {
            windows.retain(|_, (started, _)| now.duration_since(*started) < FAILURE_WINDOW);
        }
        let mut key = Self::key(ip, bearer);
        if windows.len() >= MAX_FAILURE_KEYS && !windows.contains_key(&key) {
            // Full of fresh keys: count this one under its address alone.
            key.1.clear();
        }
        let window = windows.entry(key).or_insert((now, 0));
        if now.duration_since(window.0) >= FAILURE_WINDOW {
            *window = (now, 0);
        }
        window.1 += 1;
    }
}

/// Whether `role` may call `method route` (the route template). Project scopes are
/// checked by the handlers, which know the projects a request touches.
pub fn role_allows(role: Role, method: &str, route: &str) -> bool {
    match role {
        Role::Admin => true,
        Role::Ingest => matches!(
            (method, route),
            ("POST", "/v1/usage") | ("POST", "/v1/traces") | ("GET", "/v1/budgets/check")
        ),
        Role::Read => {
            method == "GET"
                && matches!(
                    route,
                    "/v1/spend"
                        | "/v1/unpriced"
                        | "/v1/savings"
                        | "/v1/whatif"
                        | "/v1/whatif/cheaper"
                        | "/v1/budgets"
                        | "/v1/budgets/{id}"
                        | "/v1/budgets/{id}/status"
                        | "/v1/budgets/check"
                        | "/v1/alerts"
                        | "/v1/prices"
                        | "/metrics"
                        | "/openapi.json"
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_and_parse_back_to_their_id() {
        let now = Utc::now();
        let (token, stored) = generate(Role::Read, vec!["a".into()], "t".into(), None, now);
        assert_eq!(token_id(&token), Some(stored.id.as_str()));
        assert_eq!(hash(&token), stored.hash);
        assert!(!stored.hash.contains(&token[20..]));
        for bad in ["", "lmt_", "lmt_zz_x", "Bearer x", "lmt_0123456789abcdef_"] {
            assert_eq!(token_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_scoped_principal_narrows_filters_and_refuses_other_projects() {
        let principal = Principal {
            token_id: Some("x".into()),
            role: Role::Read,
            projects: Some(Arc::new(["a".to_owned(), "b".to_owned()].into())),
        };
        assert_eq!(principal.scope(vec![]).unwrap(), ["a", "b"]);
        assert_eq!(principal.scope(vec!["a".into()]).unwrap(), ["a"]);
        assert_eq!(
            principal.scope(vec!["a,c".into()]),
            Err(ForbiddenProject("c".into()))
        );
        assert!(Principal::open().scope(vec![]).unwrap().is_empty());
    }

    #[test]
    fn roles_reach_only_their_routes() {
        let table = [
            (Role::Ingest, "POST", "/v1/usage", true),
            (Role::Ingest, "GET", "/v1/spend", false),
            (Role::Ingest, "POST", "/v1/budgets", false),
            (Role::Read, "GET", "/v1/spend", true),
            (Role::Read, "POST", "/v1/usage", false),
            (Role::Read, "DELETE", "/v1/budgets/{id}", false),
            (Role::Admin, "DELETE", "/v1/budgets/{id}", true),
        ];
        for (role, method, route, allowed) in table {
            assert_eq!(
                role_allows(role, method, route),
                allowed,
                "{role:?} {method} {route}"
            );
        }
    }
}
