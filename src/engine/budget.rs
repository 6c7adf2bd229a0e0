//! The ingest byte budget (`DS_INGEST_MAX_QUEUE_BYTES`): payload bytes of write requests
//! anywhere in the server, from the first body chunk received until the writer has run
//! the request. A request reserves each chunk *before* it keeps it in memory, so the sum
//! of bodies being received, queued for the writer and in its current batch never
//! exceeds the budget; a request that would exceed it is refused (429) at once.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::EngineError;
use crate::telemetry::metrics::metrics;

#[derive(Debug, Clone)]
pub struct IngestBudget {
    sem: Arc<Semaphore>,
    max: usize,
}

/// Bytes reserved for one request; given back when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl IngestBudget {
    pub fn new(max_bytes: usize) -> IngestBudget {
        let max = max_bytes.min(Semaphore::MAX_PERMITS);
        IngestBudget {
            sem: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// An empty reservation, to grow as a body arrives.
    pub fn reservation(&self) -> Reservation {
        Reservation::default()
    }

    /// Reserves `n` more bytes for `r`, or refuses with `Overloaded`.
    pub fn grow(&self, r: &mut Reservation, n: usize) -> Result<(), EngineError> {
        if n == 0 {
            return Ok(());
        }
        let n32 = u32::try_from(n).map_err(|_| EngineError::Overloaded)?;
        let more = self.sem.clone().try_acquire_many_owned(n32).map_err(|_| {
            metrics().overloaded.inc();
            EngineError::Overloaded
        })?;
        match &mut r.permit {
            Some(p) => p.merge(more),
            None => r.permit = Some(more),
        }
        Ok(())
    }

    /// Bytes reserved now, by every request.
    pub fn in_use(&self) -> usize {
        self.max - self.sem.available_permits()
    }
}

impl Reservation {
    /// Bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_grow_until_the_budget_is_spent_and_give_it_back() {
        let b = IngestBudget::new(100);
        let mut r1 = b.reservation();
        b.grow(&mut r1, 60).unwrap();
        b.grow(&mut r1, 30).unwrap();
        assert_eq!(r1.bytes(), 90);
        let mut r2 = b.reservation();
        assert!(matches!(b.grow(&mut r2, 11), Err(EngineError::Overloaded)));
        b.grow(&mut r2, 10).unwrap();
        assert_eq!(b.in_use(), 100);
        drop(r1);
        assert_eq!(b.in_use(), 10);
        b.grow(&mut r2, 90).unwrap();
    }
}
