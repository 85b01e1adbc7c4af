-- API tokens, as on Postgres (times in Unix microseconds). Only a SHA-256 hash of each
-- token is kept. `projects` is a JSON array; empty means every project.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,  -- admin | ingest | read
    projects    TEXT    NOT NULL DEFAULT '[]',
    hash        TEXT    NOT NULL,  -- hex SHA-256 of the whole token
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
