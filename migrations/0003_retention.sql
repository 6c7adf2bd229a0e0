-- Internal streams kept in SQLite only, with bounded retention (the metrics stream).
--
-- `local_only` = 1: never sealed into segments, uploaded, or given a manifest.
-- `trimmed_pos`: own entries below this position were removed by retention; reads from
-- an explicit offset below it answer 410, reads from the start begin here.
ALTER TABLE streams ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN trimmed_pos INTEGER NOT NULL DEFAULT 0;
