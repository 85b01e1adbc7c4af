-- Prices synced from the community catalogs while running, as on Postgres (times in Unix
-- microseconds). One row per accepted change of one source.
CREATE TABLE price_syncs (
    source          TEXT    NOT NULL,
    parent_hash     TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    synced_at       INTEGER NOT NULL,
    models          INTEGER NOT NULL,
    changed_models  INTEGER NOT NULL,
    changes         TEXT    NOT NULL,
    PRIMARY KEY (source, parent_hash, content_hash)
);
CREATE INDEX price_syncs_by_time ON price_syncs (synced_at);
