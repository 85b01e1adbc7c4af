//! `llm-meter token create|list|revoke`: API tokens in the store (or, with
//! `--for-config`, an entry for the config file).

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::auth::{self, Role};
use crate::cli::TokenCommand;
use crate::config::Config;
use crate::store::StoredToken;

pub async fn run(config: &Config, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create {
            role,
            project,
            name,
            expires,
            for_config,
        } => create(config, &role, project, name, expires.as_deref(), for_config).await,
        TokenCommand::List => list(config).await,
        TokenCommand::Revoke { id } => revoke(config, &id).await,
    }
}

fn usage_error(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(super::EXIT_USAGE))
}

async fn create(
    config: &Config,
    role: &str,
    projects: Vec<String>,
    name: Option<String>,
    expires: Option<&str>,
    for_config: bool,
) -> anyhow::Result<ExitCode> {
    let Some(role) = Role::parse(role) else {
        return usage_error("--role must be admin, ingest or read");
    };
    if role == Role::Admin && !projects.is_empty() {
        return usage_error(
            "an admin token covers every project; --project is for ingest and read tokens",
        );
    }
    if let Err(message) = auth::check_projects(&projects) {
        return usage_error(&message);
    }
    let now = Utc::now();
    let expires_at = match expires {
        None => None,
        Some(text) => match humantime::parse_duration(text)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_add_signed(d))
        {
            Some(at) => Some(at),
            None => {
                return usage_error(&format!(
                    "--expires {text:?} is not a duration (90d, 12h, 30m)"
                ));
            }
        },
    };
    if for_config && expires_at.is_some() {
        return usage_error("tokens in the config do not expire; revoke them by removing them");
    }
    let name = name.unwrap_or_else(|| format!("{} token", role.as_str()));
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return usage_error("--name must be 1 to 128 printable characters");
    }
    let (token, stored) = auth::generate(role, projects, name, expires_at, now);
    if for_config {
        // TOML's own quoting: a name may hold any printable character.
        let text = |value: &str| toml::Value::String(value.to_owned()).to_string();
        let projects: Vec<String> = stored.projects.iter().map(|p| text(p)).collect();
        println!("# Add the lines up to this token's to the config file; the token itself,");
        println!("# on the last line, is shown once and must not go into the file.");
        println!("[[tokens]]");
        println!("id = {}", text(&stored.id));
        println!("name = {}", text(&stored.name));
        println!("role = {}", text(stored.role.as_str()));
        println!("projects = [{}]", projects.join(", "));
        println!("hash = \"sha256:{}\"", stored.hash);
    } else {
        let store = config.open_store().await?;
        store.insert_token(&stored).await?;
        println!("created {}", describe(&stored, now));
    }
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn status(token: &StoredToken, now: DateTime<Utc>) -> &'static str {
    if token.revoked_at.is_some() {
        "revoked"
    } else if token.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    }
}

fn describe(token: &StoredToken, now: DateTime<Utc>) -> String {
    let projects = if token.projects.is_empty() {
        "every project".to_owned()
    } else {
        format!("projects {}", token.projects.join(", "))
    };
    let expires = token
        .expires_at
        .map(|at| format!(", expires {}", at.format("%Y-%m-%dT%H:%M:%SZ")))
        .unwrap_or_default();
    format!(
        "token {} ({:?}): {}, {projects}{expires}, {}",
        token.id,
        token.name,
        token.role,
        status(token, now)
    )
}

async fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let store = config.open_store().await?;
    let now = Utc::now();
    let mut tokens = store.tokens().await?;
    for entry in &config.tokens {
        match entry.to_stored() {
            Ok(mut token) => {
                token.name = format!("{} (config)", token.name);
                tokens.push(token);
            }
            Err(message) => eprintln!("warning: {message}"),
        }
    }
    let mut table = crate::report::render::Table::new(
        &[
            "id", "name", "role", "projects", "created", "expires", "status",
        ],
        7,
    );
    table.rows = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.name.clone(),
                t.role.to_string(),
                if t.projects.is_empty() {
                    "*".into()
                } else {
                    t.projects.join(",")
                },
                t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                t.expires_at
                    .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into()),
                status(t, now).to_owned(),
            ]
        })
        .collect();
    print!("{}", table.text());
    Ok(ExitCode::SUCCESS)
}

async fn revoke(config: &Config, id: &str) -> anyhow::Result<ExitCode> {
    if config.tokens.iter().any(|t| t.id == id) {
        eprintln!("error: token {id} is in the config file: remove it there");
        return Ok(ExitCode::FAILURE);
    }
    let store = config.open_store().await?;
    if store.revoke_token(id, Utc::now()).await? {
        println!("revoked token {id}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no active token {id}");
        Ok(ExitCode::FAILURE)
    }
}
