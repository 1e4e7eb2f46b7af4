//! Admission of batch bodies to decoding: at most a budget of body bytes is decoded
//! and on its way to the store at once; further batches wait, in arrival order, with
//! their bodies buffered.
//!
//! The store writes one batch after another, while every request thread decodes
//! whatever arrives. A thousand decoded entities take several times their body's
//! bytes, so without a bound thirty-two clients each posting such a batch kept
//! thirty-two of them decoded and waiting: the server's peak resident memory under
//! the batch benchmark was 430–475 MiB, against 160 MiB with a budget of two bodies,
//! and the churn of that memory (fresh pages faulted in, freed on other threads)
//! cost throughput besides. A bound of a few bodies keeps the store busy all the same.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default budget: a few batches of a thousand entities of about ten attributes
/// (each body about 0.85 MB), enough that one is decoded while another is written.
pub const DEFAULT_BUDGET_BYTES: usize = 4 * 1024 * 1024;

/// The budget, shared by every batch request.
pub struct BatchAdmission {
    /// One permit per body byte; `None` when the budget is 0 (no bound).
    permits: Option<Arc<Semaphore>>,
    budget: u32,
}

/// A batch's place in the budget, given back when dropped (once the store answered).
#[must_use = "the budget is given back when this is dropped"]
pub struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
}

impl BatchAdmission {
    /// A budget of `budget_bytes` body bytes (at most `u32::MAX`); 0 admits every
    /// batch at once.
    pub fn new(budget_bytes: usize) -> BatchAdmission {
        let budget = u32::try_from(budget_bytes).unwrap_or(u32::MAX);
        BatchAdmission {
            permits: (budget > 0).then(|| Arc::new(Semaphore::new(budget as usize))),
            budget,
        }
    }

    /// Waits until a body of `body_bytes` fits in the budget. A body larger than the
    /// whole budget takes all of it, so it is decoded alone instead of never.
    pub async fn admit(&self, body_bytes: usize) -> Admitted {
        let Some(permits) = &self.permits else {
            return Admitted { _permit: None };
        };
        let wanted = u32::try_from(body_bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget);
        // The semaphore is never closed, so acquiring fails only if it were: then the
        // batch goes on unbounded rather than being refused.
        Admitted {
            _permit: Arc::clone(permits).acquire_many_owned(wanted).await.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    /// Polls `future` once: its output if it is ready now.
    fn now<F: Future>(future: Pin<&mut F>) -> Option<F::Output> {
        match future.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn batches_beyond_the_budget_wait_until_earlier_ones_are_done() {
        let admission = BatchAdmission::new(1000);
        let first = admission.admit(600).await;
        let second = admission.admit(400).await;
        let waiting = admission.admit(1);
        tokio::pin!(waiting);
        assert!(now(waiting.as_mut()).is_none(), "over budget");
        drop(second);
        let third = waiting.await;
        // 601 of 1000 bytes in use.
        assert!(now(std::pin::pin!(admission.admit(400))).is_none());
        assert!(now(std::pin::pin!(admission.admit(399))).is_some());
        drop((first, third));
        assert!(now(std::pin::pin!(admission.admit(1000))).is_some());
    }

    #[tokio::test]
    async fn a_body_larger_than_the_budget_is_admitted_alone() {
        let admission = BatchAdmission::new(100);
        let small = admission.admit(10).await;
        let large = admission.admit(5000);
        tokio::pin!(large);
        assert!(now(large.as_mut()).is_none(), "waits for the others");
        drop(small);
        let large = large.await;
        assert!(
            now(std::pin::pin!(admission.admit(1))).is_none(),
            "it holds it all"
        );
        drop(large);
        assert!(now(std::pin::pin!(admission.admit(100))).is_some());
    }

    #[tokio::test]
    async fn a_budget_of_zero_admits_everything_at_once() {
        let admission = BatchAdmission::new(0);
        // Each is admitted while all the others are still held.
        let held: Vec<Admitted> = (0..100)
            .map(|_| now(std::pin::pin!(admission.admit(usize::MAX))))
            .collect::<Option<_>>()
            .unwrap_or_else(|| panic!("a batch waited under a budget of 0"));
        assert_eq!(held.len(), 100);
    }
}
