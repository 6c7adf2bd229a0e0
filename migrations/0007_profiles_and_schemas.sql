-- Stream profiles and schema registries.
--
-- `streams.profile`: the profile kind (`state-protocol`, `metrics`, `evlog`,
-- `otel-traces`), NULL for generic; kinds with a configuration keep it in
-- `stream_profiles`. `stream_schemas` holds a stream's schema registry JSON (no row: the
-- default, version 0). `streams.config_gen` grows with every change of either, so that an
-- append validated against one configuration is refused (and validated again) if another
-- was installed before it committed.
ALTER TABLE streams ADD COLUMN profile TEXT;
ALTER TABLE streams ADD COLUMN config_gen INTEGER NOT NULL DEFAULT 0;

CREATE TABLE stream_profiles (
    stream_id     INTEGER PRIMARY KEY,
    profile_json  TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE stream_schemas (
    stream_id     INTEGER PRIMARY KEY,
    registry_json TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
