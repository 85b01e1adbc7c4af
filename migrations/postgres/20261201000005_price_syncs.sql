-- Prices synced from the community catalogs while running. Each row is one accepted
-- change of one source: what differed from the price book then in force (new models,
-- and new prices that apply from `synced_at` on), as a JSON array of sheets. A source's
-- latest row says which content was last accepted and how many models it listed.
-- (source, parent_hash, content_hash) is unique, so replicas that fetch the same change
-- record it once.
CREATE TABLE price_syncs (
    source          text COLLATE "C" NOT NULL,
    parent_hash     text COLLATE "C" NOT NULL,  -- the content this change was computed from ('' first)
    content_hash    text COLLATE "C" NOT NULL,  -- SHA-256 of the fetched catalog
    synced_at       timestamptz NOT NULL,
    models          integer     NOT NULL,       -- chat models the catalog lists
    changed_models  integer     NOT NULL,
    changes         text        NOT NULL,
    PRIMARY KEY (source, parent_hash, content_hash)
);
CREATE INDEX price_syncs_by_time ON price_syncs (synced_at);
