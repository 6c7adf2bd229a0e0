//! Server names and the files of one local server under the data root.

use std::path::{Path, PathBuf};

/// Longest accepted server name: a directory name's limit on every supported OS (room
/// for `@prisma/dev`'s stateless names, `<name>.<32 hex digits>`).
pub const MAX_NAME_LEN: usize = 255;

/// Validates a server name: `[A-Za-z0-9._-]+`, not `.` or `..`. `None` or blank means
/// `default`.
pub fn normalize_name(raw: Option<&str>) -> Result<String, String> {
    let name = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok_chars || name == "." || name == ".." || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "invalid server name {name:?}: use 1-{MAX_NAME_LEN} letters, digits, '.', '_' or '-' (not '.' or '..')"
        ));
    }
    Ok(name.to_string())
}

/// The files of the server called `name`.
#[derive(Debug, Clone)]
pub struct ServerPaths {
    pub name: String,
    pub dir: PathBuf,
}

impl ServerPaths {
    pub fn new(root: &Path, name: &str) -> ServerPaths {
        ServerPaths {
            name: name.to_string(),
            dir: root.join(name),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("durable-streams.sqlite")
    }

    pub fn server_json(&self) -> PathBuf {
        self.dir.join("server.json")
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join(crate::lock::LOCK_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(normalize_name(None).unwrap(), "default");
        assert_eq!(normalize_name(Some("  ")).unwrap(), "default");
        assert_eq!(normalize_name(Some(" my-app_1.2 ")).unwrap(), "my-app_1.2");
        for bad in [".", "..", "a/b", "a\\b", "a b", "ü", &"x".repeat(256)] {
            assert!(normalize_name(Some(bad)).is_err(), "{bad}");
        }
    }
}
