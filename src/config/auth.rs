//! Bearer authentication settings: [`AuthToken`] and `DS_AUTH_TOKEN[_FILE]`.

use std::net::IpAddr;

use super::knobs as k;
use super::{ConfigError, Env};

/// The shared secret of bearer authentication. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    pub fn new(token: &str) -> Result<AuthToken, ConfigError> {
        if token.len() < 16 {
            return Err(ConfigError(
                "the auth token must be at least 16 characters long".into(),
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError(
                "the auth token must be printable ASCII without spaces".into(),
            ));
        }
        Ok(AuthToken(token.to_string()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Reads `DS_AUTH_TOKEN` or `DS_AUTH_TOKEN_FILE` (not both) and checks that a server bound
/// to a non-loopback address has a token or was told `--allow-unauthenticated`.
pub(super) fn auth_from_env(
    env: &Env,
    host: IpAddr,
    allow_unauthenticated: bool,
) -> Result<Option<AuthToken>, ConfigError> {
    let token = match (
        env.get(k::DS_AUTH_TOKEN.name),
        env.get(k::DS_AUTH_TOKEN_FILE.name),
    ) {
        (Some(_), Some(_)) => {
            return Err(ConfigError(
                "set DS_AUTH_TOKEN or DS_AUTH_TOKEN_FILE, not both".into(),
            ))
        }
        (Some(t), None) => Some(AuthToken::new(t)?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read DS_AUTH_TOKEN_FILE {path}: {e}")))?;
            Some(
                AuthToken::new(text.trim())
                    .map_err(|e| ConfigError(format!("DS_AUTH_TOKEN_FILE {path}: {}", e.0)))?,
            )
        }
        (None, None) => None,
    };
    if token.is_none() && !host.is_loopback() && !allow_unauthenticated {
        return Err(ConfigError(format!(
            "refusing to listen on {host} without authentication: set DS_AUTH_TOKEN or \
             DS_AUTH_TOKEN_FILE, or pass --allow-unauthenticated if a proxy in front \
             authenticates clients"
        )));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_never_printed() {
        assert!(!format!("{:?}", AuthToken::new("0123456789abcdef")).contains("0123"));
        assert!(AuthToken::new("with space 0123456789").is_err());
        assert!(AuthToken::new("short").is_err());
    }

    #[test]
    fn token_or_file_not_both() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, " 0123456789abcdef\n").unwrap();
        let path = file.display().to_string();
        let env = Env::from_pairs([("DS_AUTH_TOKEN_FILE", path.as_str())]);
        let t = auth_from_env(&env, lo, false).unwrap().unwrap();
        assert_eq!(t.as_bytes(), b"0123456789abcdef");
        let both = Env::from_pairs([
            ("DS_AUTH_TOKEN_FILE", path.as_str()),
            ("DS_AUTH_TOKEN", "0123456789abcdef"),
        ]);
        assert!(auth_from_env(&both, lo, false).is_err());
        assert!(auth_from_env(&Env::default(), lo, false).unwrap().is_none());
    }
}
