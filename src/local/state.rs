//! `server.json`: where a running local server can be reached, in the original's shape.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Http {
    pub port: u16,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sqlite {
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerJson {
    pub version: u32,
    pub name: String,
    pub pid: u32,
    pub started_at: String,
    pub http: Http,
    pub sqlite: Sqlite,
}

/// Writes the file atomically (temporary file, then rename), pretty-printed.
pub fn write(path: &Path, s: &ServerJson) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(s).map_err(std::io::Error::other)?;
    text.push('\n');
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Reads the file; a missing or malformed file is `None`.
pub fn read(path: &Path) -> Option<ServerJson> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_the_original_shape() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.json");
        let s = ServerJson {
            version: 1,
            name: "default".into(),
            pid: 42,
            started_at: "2026-03-23T12:00:00.000Z".into(),
            http: Http {
                port: 53123,
                url: "http://127.0.0.1:53123".into(),
            },
            sqlite: Sqlite {
                path: "/x/durable-streams.sqlite".into(),
            },
        };
        write(&p, &s).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["startedAt"], "2026-03-23T12:00:00.000Z");
        assert_eq!(v["http"]["port"], 53123);
        assert_eq!(read(&p), Some(s));
        std::fs::write(&p, "{}").unwrap();
        assert_eq!(read(&p), None);
    }
}
