//! The feed of realtime subscribers (`GET /pubsub`): what committed commands changed on this
//! node's replica (process state changes, channel appends), broadcast to every subscription
//! on this node. Every node applies every command, so a subscriber on any node sees changes
//! made through any other node.
//!
//! Bounded: the broadcast keeps `FEED_CAPACITY` events; a subscriber that falls further behind
//! learns how many it missed (`Missed`) and ends its subscription, and at most
//! `SUBSCRIPTIONS_MAX` subscriptions are open at once.

use crate::state::Event;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for subscribers that are behind.
pub const FEED_CAPACITY: usize = 4096;
/// Most open subscriptions on one node.
pub const SUBSCRIPTIONS_MAX: usize = 1024;

/// The shared feed; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Arc<Event>>,
    open: Arc<AtomicUsize>,
}

/// Refusal when the node already holds `SUBSCRIPTIONS_MAX` subscriptions.
#[derive(Debug, thiserror::Error)]
#[error("too many open subscriptions on this node (limit {SUBSCRIPTIONS_MAX})")]
pub struct TooManySubscriptions;

/// A subscriber fell more than `FEED_CAPACITY` events behind and lost this many.
#[derive(Debug, thiserror::Error)]
#[error("subscriber fell behind and missed {0} events")]
pub struct Missed(pub u64);

/// One open subscription. Dropping it closes it.
pub struct Subscription {
    receiver: broadcast::Receiver<Arc<Event>>,
    open: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Subscription {
    /// The next event published after subscribing. Cancel-safe.
    pub async fn next(&mut self) -> Result<Arc<Event>, Missed> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Ok(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => return Err(Missed(missed)),
                // The feed lives as long as the node; a closed feed means shutdown.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl Default for Feed {
    fn default() -> Feed {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        let (sender, _) = broadcast::channel(FEED_CAPACITY);
        Feed {
            sender,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Opens a subscription to events published from now on.
    pub fn subscribe(&self) -> Result<Subscription, TooManySubscriptions> {
        let previous = self.open.fetch_add(1, Ordering::SeqCst);
        let subscription = Subscription {
            receiver: self.sender.subscribe(),
            open: self.open.clone(),
        };
        if previous >= SUBSCRIPTIONS_MAX {
            return Err(TooManySubscriptions);
        }
        Ok(subscription)
    }

    /// Publishes a committed event to every subscription (none listening is fine).
    pub fn publish(&self, event: Event) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::new(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(state: i32) -> Event {
        Event::ProcessChanged {
            processid: "p".into(),
            colonyname: "dev".into(),
            executortype: "cli".into(),
            state,
        }
    }

    #[tokio::test]
    async fn subscribers_see_events_after_subscribing_and_learn_what_they_missed() {
        let feed = Feed::new();
        feed.publish(changed(0)); // before anyone listens: gone
        let mut subscription = feed.subscribe().unwrap();
        feed.publish(changed(1));
        assert_eq!(*subscription.next().await.unwrap(), changed(1));
        for _ in 0..FEED_CAPACITY + 5 {
            feed.publish(changed(2));
        }
        assert_eq!(subscription.next().await.unwrap_err().0, 5);
    }

    #[test]
    fn open_subscriptions_are_bounded() {
        let feed = Feed::new();
        let open: Vec<_> = (0..SUBSCRIPTIONS_MAX)
            .map(|_| feed.subscribe().unwrap())
            .collect();
        assert!(feed.subscribe().is_err());
        drop(open);
        assert!(feed.subscribe().is_ok());
    }
}
