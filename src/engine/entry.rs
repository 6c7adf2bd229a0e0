//! One stored entry as the engine moves it around: its bytes, its routing key and when it
//! was committed.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub data: Bytes,
    /// The routing key; `None` when the entry has none (an empty key is `Some` and empty).
    pub key: Option<Bytes>,
    /// When the entry was committed (Unix ms; 0 when unknown).
    pub ts_ms: i64,
}

impl Entry {
    /// Whether the entry passes a key filter (`None` = no filter).
    pub fn matches(&self, key: Option<&[u8]>) -> bool {
        match key {
            None => true,
            Some(k) => self.key.as_deref() == Some(k),
        }
    }
}
