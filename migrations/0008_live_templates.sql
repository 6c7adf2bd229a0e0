-- Live-query templates of touch-enabled (state-protocol) streams.
--
-- One row per (stream incarnation, template). The original keys the same table by stream
-- name; here it is the stream row's id, so a stream deleted and created again under the
-- same name starts without templates. `template_id` is the template id as 16 lowercase
-- hex digits (as the original stores it, and as clients send it). `fields_json` holds the
-- field names sorted, `encodings_json` their encodings in the same order.
-- `active_from_pos` is the stream's next position when the template was (re)activated:
-- the touch processor ignores the template for entries before it (the original's
-- `active_from_source_offset`).
CREATE TABLE live_templates (
    stream_id         INTEGER NOT NULL,
    template_id       TEXT    NOT NULL,
    entity            TEXT    NOT NULL,
    fields_json       TEXT    NOT NULL,
    encodings_json    TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    last_seen_at_ms   INTEGER NOT NULL,
    inactivity_ttl_ms INTEGER NOT NULL,
    active_from_pos   INTEGER NOT NULL,
    retired_at_ms     INTEGER,
    retired_reason    TEXT,
    PRIMARY KEY (stream_id, template_id)
);

CREATE INDEX live_templates_entity_lru
    ON live_templates (stream_id, entity, state, last_seen_at_ms);
CREATE INDEX live_templates_lru
    ON live_templates (stream_id, state, last_seen_at_ms);
