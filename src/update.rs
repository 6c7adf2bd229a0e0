//! `prisma-streams self-update [--check]`: replaces this binary with the newest release
//! archive of the project (the cargo-dist archives `prisma-streams-<target>.tar.gz|.zip`).
//! Runs before any async runtime starts (the updater is blocking) and never prompts.
//!
//! A binary installed by npm is refused: the npm package manager owns it, and replacing
//! it behind its back would break `npm ci` integrity and the next `npm install`.

use self_update::cargo_crate_version;

/// Where releases are published (GitHub repository).
pub const REPO_OWNER: &str = "prisma";
pub const REPO_NAME: &str = "streams-rs";
const BIN_NAME: &str = "prisma-streams";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(
        "this prisma-streams was installed by npm ({0}); update the npm package instead: npm install @prisma/streams-server@latest"
    )]
    ManagedByNpm(String),
    #[error("cannot check for updates: {0}")]
    Check(String),
    #[error("update failed: {0}")]
    Install(String),
}

impl UpdateError {
    pub fn exit_code(&self) -> u8 {
        match self {
            UpdateError::ManagedByNpm(_) => 2,
            UpdateError::Check(_) | UpdateError::Install(_) => 1,
        }
    }
}

/// Why this binary belongs to npm, if it does: an environment marker set by the npm
/// wrappers, or an executable path inside `node_modules`.
pub fn npm_owner(managed_by: Option<&str>, exe: Option<&std::path::Path>) -> Option<String> {
    if managed_by == Some("npm") {
        return Some("PRISMA_STREAMS_MANAGED_BY=npm".into());
    }
    let exe = exe?;
    exe.components()
        .any(|c| c.as_os_str() == "node_modules")
        .then(|| exe.display().to_string())
}

fn updater(api_base: &str) -> Result<self_update::backends::github::Update, UpdateError> {
    self_update::backends::github::Update::configure()
        .repo_owner(REPO_OWNER)
        .repo_name(REPO_NAME)
        .api_base_url(api_base)
        .bin_name(BIN_NAME)
        // dist's tarballs have a root folder named like the archive; its zips do not.
        .bin_path_in_archive(if cfg!(windows) {
            "{{ bin }}"
        } else {
            "prisma-streams-{{ target }}/{{ bin }}"
        })
        .current_version(cargo_crate_version!())
        .show_download_progress(false)
        .show_output(false)
        .no_confirm(true)
        .build()
        .map_err(|e| UpdateError::Check(one_line(&e.to_string())))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks for (and with `check_only == false` installs) the newest release. Returns the
/// line to print.
pub fn run(check_only: bool, api_base: &str, npm: Option<String>) -> Result<String, UpdateError> {
    if let Some(why) = npm {
        return Err(UpdateError::ManagedByNpm(why));
    }
    let u = updater(api_base)?;
    let current = cargo_crate_version!();
    if check_only {
        let releases = u
            .get_latest_release()
            .map_err(|e| UpdateError::Check(one_line(&e.to_string())))?;
        let latest = releases
            .latest()
            .ok_or_else(|| UpdateError::Check("no release found".into()))?;
        let newer = self_update::version::bump_is_greater(current, latest.version())
            .map_err(|e| UpdateError::Check(one_line(&e.to_string())))?;
        return Ok(if newer {
            format!("update available: {current} -> {}", latest.version())
        } else {
            format!("up to date ({current})")
        });
    }
    let status = u
        .update()
        .map_err(|e| UpdateError::Install(one_line(&e.to_string())))?;
    Ok(match status {
        self_update::VersionStatus::Updated(v) => format!("updated: {current} -> {v}"),
        _ => format!("up to date ({current})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn npm_installs_are_recognised() {
        assert!(npm_owner(Some("npm"), None).is_some());
        let p = Path::new("/app/node_modules/@prisma/streams-server-linux-x64/bin/prisma-streams");
        assert!(npm_owner(None, Some(p)).is_some());
        assert!(npm_owner(None, Some(Path::new("/usr/local/bin/prisma-streams"))).is_none());
        assert!(npm_owner(Some("other"), None).is_none());
    }

    #[test]
    fn an_unreachable_release_server_is_a_clear_error() {
        let e = run(true, "http://127.0.0.1:9", None).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(!e.to_string().contains('\n'));
    }
}
