//! Setting a stream's profile (`POST /_profile`): the kind in `streams.profile`, its
//! configuration in `stream_profiles`, and, for the kinds that define one (metrics,
//! evlog, otel-traces), the profile's schema registry in `stream_schemas`, replacing the
//! stream's, all in one transaction.

use crate::engine::db::{config, streams};
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError};
use crate::profiles::Profile;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream not found")]
    NotFound,
    /// The profile cannot be installed on this stream (the message says why).
    #[error("{0}")]
    Refused(String),
}

super::write_error!(ProfileError);

impl Engine {
    /// Installs `profile` (already validated against the stream's content type) on the
    /// live stream `name`; returns it as stored.
    pub async fn set_profile(&self, name: &str, profile: Profile) -> Result<Profile, ProfileError> {
        let name = name.to_string();
        self.writer()
            .call(Submit::request(0), move |b| run(b, &name, profile))
            .await
    }
}

fn run(b: &mut Batch<'_>, name: &str, profile: Profile) -> Result<Profile, ProfileError> {
    let c = b.conn()?;
    let m = match b.stream_by_name(name)? {
        Some(m) if !m.life.deleted && !m.is_expired(b.now) => m,
        _ => return Err(ProfileError::NotFound),
    };
    profile
        .check_install(m.settings.profile.as_deref(), m.tail.next_pos)
        .map_err(ProfileError::Refused)?;
    let stored = profile
        .uses_stored_row()
        .then(|| profile.to_json().to_string());
    config::set_profile(c, m.id, stored.as_deref(), b.now)?;
    // metrics, evlog and otel-traces bring their own schema registry, replacing any.
    if let Some(registry) = profile.default_registry(name) {
        let json = String::from_utf8(registry.to_json())
            .map_err(|e| EngineError::Internal(format!("registry is not UTF-8: {e}")))?;
        config::set_registry(c, m.id, &json, b.now)?;
    }
    let kind = match profile {
        Profile::Generic => None,
        _ => Some(profile.kind()),
    };
    streams::set_profile(c, m.id, kind, b.tiered && !m.config.local_only)?;
    Ok(profile)
}
