-- Durable Streams subscriptions (webhook and pull-wake), their stream links and the
-- server's keys (webhook signing, callback-token MAC). The reference server keeps all of
-- this in memory; here it survives a restart: a pending webhook retry is retried, a
-- held lease can still be acked with its token, and the signing key (published in
-- jwks.json) stays the same.
--
-- Positions are stream positions: `acked_pos` -1 means "linked before its first entry".
-- `wake_snapshot_json` is `[[path, tail_pos], ...]`. Times are Unix ms.
CREATE TABLE subscriptions (
    id                  TEXT    PRIMARY KEY,
    kind                TEXT    NOT NULL,
    pattern             TEXT,
    webhook_url         TEXT,
    wake_stream         TEXT,
    lease_ttl_ms        INTEGER NOT NULL,
    description         TEXT,
    config_hash         TEXT    NOT NULL,
    base_url            TEXT    NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    generation          INTEGER NOT NULL,
    wake_id             TEXT,
    wake_snapshot_json  TEXT    NOT NULL,
    holder              TEXT,
    lease_expires_at_ms INTEGER,
    delivered           INTEGER NOT NULL,
    retry_count         INTEGER NOT NULL,
    next_attempt_at_ms  INTEGER,
    failed              INTEGER NOT NULL
);

CREATE TABLE subscription_links (
    subscription_id TEXT    NOT NULL,
    stream          TEXT    NOT NULL,
    explicit        INTEGER NOT NULL,
    glob            INTEGER NOT NULL,
    acked_pos       INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, stream)
);

CREATE TABLE subscription_keys (
    name          TEXT    PRIMARY KEY,
    secret        BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
