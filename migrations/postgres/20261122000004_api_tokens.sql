-- API tokens. Only a SHA-256 hash of each token is kept; the token itself is shown once,
-- when it is created. `projects` empty means every project. Revoked tokens stay (audit).
CREATE TABLE api_tokens (
    id          text COLLATE "C" PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL,  -- admin | ingest | read
    projects    jsonb       NOT NULL DEFAULT '[]',
    hash        text        NOT NULL,  -- hex SHA-256 of the whole token
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz
);
