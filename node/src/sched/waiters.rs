//! Long-poll waiters keyed by (colony, executor type). Each enqueued process wakes exactly one
//! waiter, in arrival order (never a broadcast: ColonyOS measured a 1,840x amplification from
//! waking every listener). A woken waiter that finds nothing it can run passes the wake on.
//!
//! ```text
//!   api assign: register() -> check queue / propose Assign -> ticket.notified() -> retry
//!   apply:      Event::Enqueued{colony, type} -> publish() -> wake_one(colony, type)
//! ```
//! Registering before checking the queue means a process enqueued in between still wakes us.

use super::feed::Feed;
use crate::state::Event;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

/// Refusal when the node already holds its maximum number of long-polls.
#[derive(Debug, thiserror::Error)]
#[error("too many concurrent long-polls on this node (limit {limit})")]
pub struct TooManyWaiters {
    pub limit: usize,
}

type Key = (String, String);

/// One waiting long-poll; woken through its `Notify` (which keeps a permit if woken early).
struct Waiter {
    notify: Notify,
    /// How many waiters this wake already passed through (0 = straight from an event).
    hops: AtomicUsize,
}

/// Most times one wake is passed on by waiters that cannot run the queued work: bounds the
/// work one event can cause when many waiters target other processes.
pub const PASS_ON_MAX: usize = 64;

/// The registry. Shared by the API (register) and the state machine (publish).
pub struct Waiters {
    /// FIFO of waiters per key. Entries are weak: a dropped ticket leaves a dead entry that
    /// `wake_one` skips and `register` prunes.
    queues: Mutex<HashMap<Key, VecDeque<Weak<Waiter>>>>,
    /// Live tickets on this node, bounded by `limit`.
    live: Arc<AtomicUsize>,
    /// Maximum concurrent long-polls (`api.long_polls_max`).
    limit: usize,
    /// Where changes go for realtime subscribers.
    feed: Feed,
}

/// A registered wait. Dropping it unregisters.
pub struct Ticket {
    waiter: Arc<Waiter>,
    /// Its unit of the long-poll limit; none when its long-poll holds a `Slot` itself.
    _slot: Option<Slot>,
}

/// One long-poll's unit of the node's long-poll limit, held for the whole poll (parked on the
/// leader or waiting here). Dropping it gives the unit back.
pub struct Slot {
    live: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ticket {
    /// Completes when this waiter is woken (immediately if it was woken since registering),
    /// returning how many waiters the wake passed through before. Cancel-safe.
    pub async fn notified(&self) -> usize {
        self.waiter.notify.notified().await;
        self.waiter.hops.load(Ordering::SeqCst)
    }
}

impl Waiters {
    pub fn new(limit: usize) -> Waiters {
        Waiters {
            queues: Mutex::new(HashMap::new()),
            live: Arc::new(AtomicUsize::new(0)),
            limit,
            feed: Feed::new(),
        }
    }

    /// Takes a unit of the long-poll limit for one long-poll (refused at the limit).
    pub fn slot(&self) -> Result<Slot, TooManyWaiters> {
        let previous = self.live.fetch_add(1, Ordering::SeqCst);
        let slot = Slot {
            live: self.live.clone(),
        };
        match previous >= self.limit {
            true => Err(TooManyWaiters { limit: self.limit }),
            false => Ok(slot),
        }
    }

    /// Registers a waiter for `(colony, executortype)` at the back of its queue.
    pub fn register(&self, colony: &str, executortype: &str) -> Result<Ticket, TooManyWaiters> {
        let slot = self.slot()?;
        Ok(self.enqueue(colony, executortype, Some(slot)))
    }

    /// Registers a waiter for a long-poll that holds `slot` (the unit is the slot's).
    pub fn register_in(&self, _slot: &Slot, colony: &str, executortype: &str) -> Ticket {
        self.enqueue(colony, executortype, None)
    }

    fn enqueue(&self, colony: &str, executortype: &str, slot: Option<Slot>) -> Ticket {
        let waiter = Arc::new(Waiter {
            notify: Notify::new(),
            hops: AtomicUsize::new(0),
        });
        let ticket = Ticket {
            waiter,
            _slot: slot,
        };
        let mut queues = self.queues.lock().expect("waiter lock is never poisoned");
        let queue = queues
            .entry((colony.to_string(), executortype.to_string()))
            .or_default();
        if queue.len() >= self.limit {
            queue.retain(|w| w.strong_count() > 0);
        }
        queue.push_back(Arc::downgrade(&ticket.waiter));
        ticket
    }

    /// Wakes the longest-waiting live waiter for the key, if any. Returns whether one was woken.
    pub fn wake_one(&self, colony: &str, executortype: &str) -> bool {
        self.wake(colony, executortype, None, 0)
    }

    /// Passes a wake that `ticket` could not use to the next waiter (not `ticket` itself),
    /// unless the wake already made `PASS_ON_MAX` hops.
    pub fn pass_on(&self, colony: &str, executortype: &str, ticket: &Ticket, hops: usize) -> bool {
        hops < PASS_ON_MAX && self.wake(colony, executortype, Some(&ticket.waiter), hops + 1)
    }

    fn wake(
        &self,
        colony: &str,
        executortype: &str,
        skip: Option<&Arc<Waiter>>,
        hops: usize,
    ) -> bool {
        let mut queues = self.queues.lock().expect("waiter lock is never poisoned");
        let key = (colony.to_string(), executortype.to_string());
        let Some(queue) = queues.get_mut(&key) else {
            return false;
        };
        let position = queue.iter().position(|weak| match weak.upgrade() {
            Some(waiter) => skip.is_none_or(|skip| !Arc::ptr_eq(skip, &waiter)),
            None => false,
        });
        let woken = match position
            .and_then(|i| queue.remove(i))
            .and_then(|w| w.upgrade())
        {
            Some(waiter) => {
                waiter.hops.store(hops, Ordering::SeqCst);
                waiter.notify.notify_one();
                true
            }
            None => false,
        };
        queue.retain(|weak| weak.strong_count() > 0);
        if queue.is_empty() {
            queues.remove(&key);
        }
        woken
    }

    /// Reacts to a committed event.
    pub fn publish(&self, event: &Event) {
        match event {
            Event::Enqueued {
                colonyname,
                executortype,
            } => {
                self.wake_one(colonyname, executortype);
            }
            Event::Resumed { colonyname } => self.wake_colony(colonyname),
            // Parked long-polls are the leader's business (`raft::parking`).
            Event::ExecutorsReleased { .. } => {}
            Event::ProcessChanged { .. } | Event::ChannelAppended { .. } => {
                self.feed.publish(event.clone())
            }
        }
    }

    /// The feed realtime subscribers follow (every committed event goes through `publish`).
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Wakes every waiter of `colony`, of any executor type (assignments were resumed: rare,
    /// and each of them may have work now).
    pub fn wake_colony(&self, colony: &str) {
        let mut queues = self.queues.lock().expect("waiter lock is never poisoned");
        queues.retain(|(queue_colony, _), queue| {
            if queue_colony != colony {
                return true;
            }
            for waiter in queue.drain(..).filter_map(|weak| weak.upgrade()) {
                waiter.hops.store(0, Ordering::SeqCst);
                waiter.notify.notify_one();
            }
            false
        });
    }

    /// Live long-polls on this node.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn is_ready(ticket: &Ticket) -> bool {
        let mut future = pin!(ticket.notified());
        let mut cx = Context::from_waker(Waker::noop());
        matches!(future.as_mut().poll(&mut cx), Poll::Ready(_))
    }

    #[test]
    fn one_event_wakes_exactly_one_waiter_in_order() {
        let waiters = Waiters::new(10);
        let first = waiters.register("dev", "cli").unwrap();
        let second = waiters.register("dev", "cli").unwrap();
        let other_type = waiters.register("dev", "gpu").unwrap();
        waiters.publish(&Event::Enqueued {
            colonyname: "dev".into(),
            executortype: "cli".into(),
        });
        assert!(is_ready(&first));
        assert!(!is_ready(&second));
        assert!(!is_ready(&other_type));
        assert!(waiters.wake_one("dev", "cli"));
        assert!(is_ready(&second));
        assert!(!waiters.wake_one("dev", "cli"), "queue is empty now");
    }

    #[test]
    fn resuming_a_colony_wakes_all_its_waiters() {
        let waiters = Waiters::new(10);
        let cli = waiters.register("dev", "cli").unwrap();
        let gpu = waiters.register("dev", "gpu").unwrap();
        let other_colony = waiters.register("prod", "cli").unwrap();
        waiters.publish(&Event::Resumed {
            colonyname: "dev".into(),
        });
        assert!(is_ready(&cli) && is_ready(&gpu));
        assert!(!is_ready(&other_colony));
    }

    #[test]
    fn pass_on_skips_the_passer_and_is_bounded() {
        let waiters = Waiters::new(10);
        let passer = waiters.register("dev", "cli").unwrap();
        assert!(
            !waiters.pass_on("dev", "cli", &passer, 0),
            "nobody else is waiting"
        );
        let next = waiters.register("dev", "cli").unwrap();
        assert!(
            !waiters.pass_on("dev", "cli", &passer, PASS_ON_MAX),
            "hop limit reached"
        );
        assert!(waiters.pass_on("dev", "cli", &passer, 3));
        assert!(is_ready(&next));
        assert!(!is_ready(&passer));
    }

    #[test]
    fn dropped_tickets_are_skipped_and_limit_is_enforced() {
        let waiters = Waiters::new(2);
        let gone = waiters.register("dev", "cli").unwrap();
        let kept = waiters.register("dev", "cli").unwrap();
        assert!(waiters.register("dev", "cli").is_err());
        drop(gone);
        assert_eq!(waiters.live(), 1);
        assert!(waiters.wake_one("dev", "cli"));
        assert!(is_ready(&kept));
    }
}
