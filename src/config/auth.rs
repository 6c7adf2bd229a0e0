//! Bearer authentication settings: [`AuthToken`] and `DS_AUTH_TOKEN[_FILE]`.

use std::net::IpAddr;

use super::knobs as k;
use super::{ConfigError, Env};

/// The shared secret of bearer authentication. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

/// How the command line chose authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlag {
    /// No flag: a token from `DS_AUTH_TOKEN[_FILE]` if set; none only on loopback (or with
    /// `--allow-unauthenticated`).
    Default,
    /// `--no-auth`: none, on any address; a configured token is a contradiction.
    NoAuth,
    /// `--auth-strategy api-key`: the token is `API_KEY` (the original's rule: at least
    /// 10 characters).
    ApiKey,
}

/// Shortest `API_KEY` accepted, as in the original.
const API_KEY_MIN_LEN: usize = 10;

impl AuthToken {
    pub fn new(token: &str) -> Result<AuthToken, ConfigError> {
        Self::with_min_len(token, 16)
    }

    fn with_min_len(token: &str, min: usize) -> Result<AuthToken, ConfigError> {
        if token.len() < min {
            return Err(ConfigError(format!(
                "the auth token must be at least {min} characters long"
            )));
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

/// Reads `DS_AUTH_TOKEN` or `DS_AUTH_TOKEN_FILE` (not both), or `API_KEY` with
/// `--auth-strategy api-key`, and checks that a server bound to a non-loopback address has
/// a token or was told `--allow-unauthenticated` or `--no-auth`.
pub(super) fn auth_from_env(
    env: &Env,
    host: IpAddr,
    allow_unauthenticated: bool,
    flag: AuthFlag,
) -> Result<Option<AuthToken>, ConfigError> {
    let configured =
        env.get(k::DS_AUTH_TOKEN.name).is_some() || env.get(k::DS_AUTH_TOKEN_FILE.name).is_some();
    match flag {
        AuthFlag::Default => {}
        AuthFlag::NoAuth if configured => {
            return Err(ConfigError(
                "--no-auth contradicts DS_AUTH_TOKEN / DS_AUTH_TOKEN_FILE: unset them or drop --no-auth"
                    .into(),
            ))
        }
        AuthFlag::NoAuth => return Ok(None),
        AuthFlag::ApiKey if configured => {
            return Err(ConfigError(
                "--auth-strategy api-key takes its token from API_KEY: unset DS_AUTH_TOKEN / DS_AUTH_TOKEN_FILE"
                    .into(),
            ))
        }
        AuthFlag::ApiKey => {
            let key = env.get(k::API_KEY.name).unwrap_or_default();
            return AuthToken::with_min_len(key, API_KEY_MIN_LEN)
                .map(Some)
                .map_err(|_| {
                    ConfigError(format!(
                        "--auth-strategy api-key needs API_KEY: at least {API_KEY_MIN_LEN} printable characters without spaces"
                    ))
                });
        }
    }
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
        let t = auth_from_env(&env, lo, false, AuthFlag::Default)
            .unwrap()
            .unwrap();
        assert_eq!(t.as_bytes(), b"0123456789abcdef");
        let both = Env::from_pairs([
            ("DS_AUTH_TOKEN_FILE", path.as_str()),
            ("DS_AUTH_TOKEN", "0123456789abcdef"),
        ]);
        assert!(auth_from_env(&both, lo, false, AuthFlag::Default).is_err());
        assert!(auth_from_env(&Env::default(), lo, false, AuthFlag::Default)
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_originals_flags() {
        let any = IpAddr::from([0, 0, 0, 0]);
        // --no-auth: no token, on any address; a configured token contradicts it.
        assert!(auth_from_env(&Env::default(), any, false, AuthFlag::NoAuth)
            .unwrap()
            .is_none());
        let token = Env::from_pairs([("DS_AUTH_TOKEN", "0123456789abcdef")]);
        let e = auth_from_env(&token, any, false, AuthFlag::NoAuth).unwrap_err();
        assert!(e.0.contains("--no-auth"), "{e}");
        // --auth-strategy api-key: API_KEY, at least 10 characters.
        let key = Env::from_pairs([("API_KEY", "0123456789")]);
        let t = auth_from_env(&key, any, false, AuthFlag::ApiKey)
            .unwrap()
            .unwrap();
        assert_eq!(t.as_bytes(), b"0123456789");
        for bad in [Env::default(), Env::from_pairs([("API_KEY", "012345678")])] {
            let e = auth_from_env(&bad, any, false, AuthFlag::ApiKey).unwrap_err();
            assert!(e.0.contains("API_KEY"), "{e}");
        }
        assert!(auth_from_env(&token, any, false, AuthFlag::ApiKey).is_err());
        // API_KEY alone changes nothing (the original also needs the flag).
        assert!(
            auth_from_env(&key, IpAddr::from([127, 0, 0, 1]), false, AuthFlag::Default)
                .unwrap()
                .is_none()
        );
    }
}
