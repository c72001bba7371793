//! Smart batching: calls that arrive while earlier ones are with the database go to it together.
//!
//! There is no timer. A call that finds a free slot (fewer than `in_flight` batches running)
//! starts a batch at once — alone, at low load, so it waits for nothing. Calls that arrive while
//! every slot is busy queue up, and the next slot to come free takes all of them (up to
//! `max_batch`) as one batch. Batches thus grow with the load and cost no latency without it.
//!
//! Each slot runs on a task of its own, never inside a caller's future: a caller whose future
//! is dropped (cancelled) loses only its own answer and never stops the batch that carries the
//! others. Calls whose callers are gone before their batch starts are left out of it.
//!
//! Crates that do this (`batched`, `batchy`) wait for a time window to fill a batch, which adds
//! that window to every call at low load; `request_coalescer` merges identical calls only.

use crate::Result;
use paygate_domain::Problem;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// What a batch returns: one answer per call, in the order of the calls.
pub type BatchFuture<T> = Pin<Box<dyn Future<Output = Vec<Result<T>>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls in one batch at most.
    pub max_batch: usize,
    /// Batches running at once at most (each on its own connection).
    pub in_flight: usize,
}

/// Sends calls of type `C` in batches to a function that answers each with a `T`.
pub struct Coalescer<C, T> {
    shared: Arc<Shared<C, T>>,
}

type Waiting<C, T> = VecDeque<(C, oneshot::Sender<Result<T>>)>;

struct Shared<C, T> {
    limits: Limits,
    queue: Mutex<Queue<C, T>>,
    run: Box<dyn Fn(Vec<C>) -> BatchFuture<T> + Send + Sync>,
}

struct Queue<C, T> {
    waiting: Waiting<C, T>,
    /// Slots taken: tasks draining the queue.
    running: usize,
}

impl<C, T> Shared<C, T> {
    // The lock is held for queue operations only, none of which can panic half-way.
    fn queue(&self) -> MutexGuard<'_, Queue<C, T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Send + 'static, T: Send + 'static> Coalescer<C, T> {
    /// `run` answers a batch of calls (one answer per call, in order); it runs on a task of its
    /// own, so it owns what it uses.
    pub fn new(limits: Limits, run: impl Fn(Vec<C>) -> BatchFuture<T> + Send + Sync + 'static) -> Self {
        let limits = Limits { max_batch: limits.max_batch.max(1), in_flight: limits.in_flight.max(1) };
        let queue = Mutex::new(Queue { waiting: VecDeque::new(), running: 0 });
        Coalescer { shared: Arc::new(Shared { limits, queue, run: Box::new(run) }) }
    }

    /// Queues `call`, starts a slot if one is free, and waits for the answer of its batch.
    pub async fn call(&self, call: C) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.shared.queue();
            queue.waiting.push_back((call, answer));
            let free = queue.running < self.shared.limits.in_flight;
            queue.running += usize::from(free);
            free
        };
        if start {
            tokio::spawn(drain(Slot(Some(self.shared.clone()))));
        }
        answered.await.unwrap_or_else(|_| Err(Problem::internal("a batch ended without answering")))
    }
}

/// A taken slot. Given back by [`Slot::next_batch`] when the queue is empty, under the same lock
/// a caller checks for a free slot, so no call is ever left queued with nobody to take it.
struct Slot<C: Send + 'static, T: Send + 'static>(Option<Arc<Shared<C, T>>>);

impl<C: Send + 'static, T: Send + 'static> Slot<C, T> {
    /// The next batch, or `None` (the slot given back) when nobody waits.
    fn next_batch(&mut self) -> Option<Waiting<C, T>> {
        let shared = self.0.as_ref()?;
        let mut queue = shared.queue();
        queue.waiting.retain(|(_, answer)| !answer.is_closed());
        if queue.waiting.is_empty() {
            queue.running -= 1;
            drop(queue);
            self.0 = None;
            return None;
        }
        let n = queue.waiting.len().min(shared.limits.max_batch);
        Some(queue.waiting.drain(..n).collect())
    }
}

/// A slot still held when its task ends (a batch panicked, the runtime is shutting down): the
/// slot is freed, and if calls wait, another task takes them.
impl<C: Send + 'static, T: Send + 'static> Drop for Slot<C, T> {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else { return };
        let mut queue = shared.queue();
        queue.running -= 1;
        let restart = !queue.waiting.is_empty() && queue.running < shared.limits.in_flight;
        queue.running += usize::from(restart);
        drop(queue);
        if let (true, Ok(runtime)) = (restart, tokio::runtime::Handle::try_current()) {
            runtime.spawn(drain_boxed(Slot(Some(shared))));
        }
    }
}

// A named future type would be recursive (drain → Slot::drop → drain): boxing breaks the cycle.
fn drain_boxed<C: Send + 'static, T: Send + 'static>(slot: Slot<C, T>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(drain(slot))
}

async fn drain<C: Send + 'static, T: Send + 'static>(mut slot: Slot<C, T>) {
    while let Some(batch) = slot.next_batch() {
        let Some(shared) = slot.0.clone() else { return };
        let (calls, answers): (Vec<C>, Vec<_>) = batch.into_iter().unzip();
        let mut results = (shared.run)(calls).await.into_iter();
        for answer in answers {
            let result = results.next().unwrap_or_else(|| Err(Problem::internal("a batch answered too few calls")));
            // A caller that went away meanwhile takes no answer; the others still get theirs.
            let _ = answer.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Waker};
    use tokio::sync::Semaphore;

    /// A coalescer whose batches wait for `gate` and record their sizes; each call is answered
    /// with itself times ten, and a call of 0 fails alone.
    fn gated(limits: Limits, gate: Arc<Semaphore>, sizes: Arc<Mutex<Vec<usize>>>) -> Coalescer<u32, u32> {
        Coalescer::new(limits, move |calls: Vec<u32>| {
            let (gate, sizes) = (gate.clone(), sizes.clone());
            Box::pin(async move {
                gate.acquire().await.expect("gate open").forget();
                sizes.lock().unwrap().push(calls.len());
                calls
                    .into_iter()
                    .map(|c| if c == 0 { Err(Problem::invalid("c", "zero")) } else { Ok(c * 10) })
                    .collect()
            })
        })
    }

    /// Polls a call once: after that it is queued.
    fn queue_now<F: Future + Unpin>(f: &mut F) {
        assert!(Pin::new(f).poll(&mut Context::from_waker(Waker::noop())).is_pending());
    }

    /// Waits until the running slots took everything queued.
    async fn taken<C, T>(c: &Coalescer<C, T>) {
        while !c.shared.queue().waiting.is_empty() {
            tokio::task::yield_now().await;
        }
    }

    /// Waits until every slot was given back (a slot's task ends just after its last answer).
    async fn idle<C, T>(c: &Coalescer<C, T>) {
        let wait = async {
            while c.shared.queue().running != 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), wait).await.expect("every slot given back");
    }

    fn caller(c: &Arc<Coalescer<u32, u32>>, n: u32) -> Pin<Box<impl Future<Output = Result<u32>>>> {
        let c = c.clone();
        Box::pin(async move { c.call(n).await })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_arriving_during_a_batch_form_the_next_one() {
        let (gate, sizes) = (Arc::new(Semaphore::new(0)), Arc::new(Mutex::new(Vec::new())));
        let c = Arc::new(gated(Limits { max_batch: 3, in_flight: 1 }, gate.clone(), sizes.clone()));
        // The first call finds the slot free and goes alone; five more queue behind it, one of
        // them cancelled before its batch starts and one failing on its own.
        let mut first = caller(&c, 1);
        queue_now(&mut first);
        taken(&c).await;
        let mut queued: Vec<_> = [2, 3, 0, 4, 5].into_iter().map(|n| caller(&c, n)).collect();
        queued.iter_mut().for_each(queue_now);
        drop(queued.remove(1));
        gate.add_permits(3);
        assert_eq!(first.await.unwrap(), 10);
        let answers = join(queued).await;
        assert_eq!(answers[0].as_ref().unwrap(), &20);
        assert_eq!(answers[1].as_ref().unwrap_err().param.as_deref(), Some("c"));
        assert_eq!(answers[2..].iter().map(|a| *a.as_ref().unwrap()).collect::<Vec<_>>(), [40, 50]);
        // At most three a batch: [1], then the four calls left of the five, as three and one.
        assert_eq!(*sizes.lock().unwrap(), [1, 3, 1]);
        idle(&c).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_dropped_mid_batch_does_not_stop_it() {
        let (gate, sizes) = (Arc::new(Semaphore::new(0)), Arc::new(Mutex::new(Vec::new())));
        let c = Arc::new(gated(Limits { max_batch: 8, in_flight: 1 }, gate.clone(), sizes.clone()));
        let mut first = caller(&c, 1);
        queue_now(&mut first);
        taken(&c).await;
        let mut queued: Vec<_> = [2, 3].into_iter().map(|n| caller(&c, n)).collect();
        queued.iter_mut().for_each(queue_now);
        // The first batch is running (waiting at the gate) when its only caller goes away.
        drop(first);
        gate.add_permits(2);
        assert_eq!(join(queued).await.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [20, 30]);
        assert_eq!(*sizes.lock().unwrap(), [1, 2], "the dropped caller's batch ran to its end");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_batch_fails_its_calls_only() {
        let ran = Arc::new(AtomicUsize::new(0));
        let seen = ran.clone();
        let c = Coalescer::new(Limits { max_batch: 4, in_flight: 1 }, move |calls: Vec<u32>| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.fetch_add(1, Ordering::SeqCst);
                assert!(!calls.contains(&0), "a bug in a batch");
                calls.into_iter().map(Ok).collect()
            })
        });
        assert_eq!(c.call(0).await.unwrap_err().message, "a batch ended without answering");
        assert_eq!(c.call(7).await.unwrap(), 7);
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        idle(&c).await;
    }

    async fn join<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
        let mut out = Vec::with_capacity(futures.len());
        for f in futures {
            out.push(f.await);
        }
        out
    }
}
