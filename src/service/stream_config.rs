//! `/_profile` and `/_schema`: reading and changing a stream's profile and schema
//! registry. Validation lives in the pure `profiles` and `schema` modules; the changes
//! themselves run in the writer (`engine::ops::{profile, schema}`), against the state the
//! transaction sees.

use bytes::Bytes;
use serde_json::Value;

use super::{ServiceError, ServiceResult, StreamService};
use crate::engine::StreamMeta;
use crate::profiles;

impl StreamService {
    /// A live stream for the configuration routes: a deleted one is 404 there, as in the
    /// original (these routes have no 410).
    async fn configurable(&self, name: &str) -> ServiceResult<StreamMeta> {
        match self.live(name).await {
            Err(ServiceError::Gone) => Err(ServiceError::NotFound("stream not found".into())),
            other => other,
        }
    }

    /// `GET /_profile`: `{"apiVersion", "profile"}`.
    pub async fn profile(&self, name: &str) -> ServiceResult<Value> {
        let meta = self.configurable(name).await?;
        let settings = self.settings(&meta).await?;
        Ok(profiles::response(&settings.profile))
    }

    /// `POST /_profile`: installs the profile in the body; answers the profile as stored.
    pub async fn set_profile(&self, name: &str, body: Bytes) -> ServiceResult<Value> {
        let meta = self.configurable(name).await?;
        let profile = profiles::parse_update(&body, &meta.config.content_type)
            .map_err(ServiceError::BadRequest)?;
        let stored = self.engine.set_profile(name, profile).await?;
        Ok(profiles::response(&stored))
    }

    /// `GET /_schema`: the registry (the default, empty one if none was installed).
    pub async fn schema(&self, name: &str) -> ServiceResult<Value> {
        let meta = self.configurable(name).await?;
        let settings = self.settings(&meta).await?;
        Ok(settings.registry.to_value())
    }

    /// `POST /_schema`: applies the update body; answers the whole new registry.
    pub async fn update_schema(&self, name: &str, body: Bytes) -> ServiceResult<Value> {
        self.configurable(name).await?;
        let registry = self.engine.update_schema(name, body).await?;
        Ok(registry.to_value())
    }
}
