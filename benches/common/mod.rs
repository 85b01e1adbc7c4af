//! What the benchmarks share: a fresh Postgres database per run.
//!
//! BENCH_DATABASE_URL (else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
//! names a server where the user may create databases.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

pub fn admin_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn with_database(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    format!("{}/{}", &url[..host_end], name)
}

pub async fn fresh_database(name: &str) -> String {
    let admin = admin_url();
    let mut connection = PgConnection::connect(&admin)
        .await
        .expect("Postgres for the benchmark (BENCH_DATABASE_URL)");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut connection)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut connection)
        .await
        .unwrap();
    with_database(&admin, name)
}

pub async fn drop_database(name: &str) {
    let mut connection = PgConnection::connect(&admin_url()).await.unwrap();
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut connection)
    .await;
}
