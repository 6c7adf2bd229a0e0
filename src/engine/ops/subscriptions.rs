//! Writes of subscription state (`engine::db::subscriptions`): the service decides every
//! transition (`service::subscriptions`) and submits its effects here as one list of
//! [`SubWrite`]s, run in one writer call, so that a transition is stored whole or not at
//! all. Keys are created once, in the writer, and read back forever after.

use crate::engine::db::subscriptions as db;
use crate::engine::writer::Submit;
use crate::engine::{Engine, EngineError};
use crate::subscriptions::{Link, Subscription};

/// One stored effect of a subscription transition.
#[derive(Debug, Clone)]
pub enum SubWrite {
    /// The subscription's row (configuration and wake state; links are separate).
    Put(Box<Subscription>),
    Link {
        id: String,
        path: String,
        link: Link,
    },
    Unlink {
        id: String,
        path: String,
    },
    /// The subscription and all its links.
    Delete(String),
}

impl Engine {
    /// Every stored subscription, with its links.
    pub async fn load_subscriptions(&self) -> Result<Vec<Subscription>, EngineError> {
        self.reader().run(db::load_all).await
    }

    /// Stores the effects of one transition, in order, in one transaction.
    pub async fn write_subscriptions(&self, writes: Vec<SubWrite>) -> Result<(), EngineError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.writer()
            .call(Submit::internal(), move |b| {
                let c = b.conn()?;
                for w in &writes {
                    match w {
                        SubWrite::Put(s) => db::put(c, s)?,
                        SubWrite::Link { id, path, link } => db::put_link(c, id, path, link)?,
                        SubWrite::Unlink { id, path } => db::delete_link(c, id, path)?,
                        SubWrite::Delete(id) => db::delete(c, id)?,
                    }
                }
                Ok::<_, EngineError>(())
            })
            .await
    }

    /// The 32-byte secret `name`, created from the clock's randomness the first time
    /// (only then is anything written).
    pub async fn subscription_key(&self, name: &str) -> Result<[u8; 32], EngineError> {
        let name = name.to_string();
        let n = name.clone();
        if let Some(k) = self.reader().run(move |c| db::key(c, &n)).await? {
            if let Ok(k) = <[u8; 32]>::try_from(k.as_slice()) {
                return Ok(k);
            }
        }
        self.writer()
            .call(Submit::internal(), move |b| {
                let c = b.conn()?;
                if let Some(k) = db::key(c, &name)? {
                    if let Ok(k) = <[u8; 32]>::try_from(k.as_slice()) {
                        return Ok(k);
                    }
                }
                // Two 128-bit random tokens (hex) make the 32 bytes.
                let hex = format!("{}{}", b.token(), b.token());
                let mut k = [0u8; 32];
                for (i, byte) in k.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("0"), 16)
                        .unwrap_or(0);
                }
                c.execute("DELETE FROM subscription_keys WHERE name = ?1", [&name])?;
                db::put_key(c, &name, &k, b.now)?;
                Ok::<_, EngineError>(k)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscriptions::{Kind, WakeState};

    fn sub(id: &str) -> Subscription {
        Subscription {
            id: id.into(),
            kind: Kind::PullWake,
            pattern: None,
            webhook_url: None,
            wake_stream: Some("w".into()),
            lease_ttl_ms: 1000,
            description: Some("d".into()),
            config_hash: "h".into(),
            base_url: "http://x".into(),
            created_at_ms: 5,
            links: Default::default(),
            wake: WakeState {
                generation: 3,
                wake_id: Some("w_1".into()),
                snapshot: vec![("a".into(), 4)],
                holder: Some("worker".into()),
                lease_expires_at_ms: Some(99),
                ..Default::default()
            },
        }
    }

    fn open(dir: &std::path::Path) -> Engine {
        let clock = crate::clock::ManualClock::new(0);
        Engine::open(
            dir.join("t.sqlite"),
            &crate::config::Limits::default(),
            None,
            clock.clone(),
            crate::health::Health::new(clock),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn state_and_keys_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let link = Link {
            explicit: true,
            glob: false,
            acked: -1,
        };
        let key = {
            let e = open(dir.path());
            e.write_subscriptions(vec![
                SubWrite::Put(Box::new(sub("a"))),
                SubWrite::Put(Box::new(sub("b"))),
                SubWrite::Link {
                    id: "a".into(),
                    path: "s/1".into(),
                    link,
                },
                SubWrite::Link {
                    id: "a".into(),
                    path: "s/2".into(),
                    link,
                },
                SubWrite::Unlink {
                    id: "a".into(),
                    path: "s/2".into(),
                },
                SubWrite::Delete("b".into()),
            ])
            .await
            .unwrap();
            let k = e.subscription_key("signing").await.unwrap();
            assert_eq!(e.subscription_key("signing").await.unwrap(), k);
            assert_ne!(e.subscription_key("other").await.unwrap(), k);
            e.shutdown();
            k
        };
        let e = open(dir.path());
        let all = e.load_subscriptions().await.unwrap();
        let mut want = sub("a");
        want.links.insert("s/1".into(), link);
        assert_eq!(all, vec![want]);
        assert_eq!(e.subscription_key("signing").await.unwrap(), key);
        e.shutdown();
    }
}
