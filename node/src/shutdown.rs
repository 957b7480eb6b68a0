//! The node's shutdown signal: one `Shutdown` trigger, any number of cloned `Signal`s that
//! background tasks await, and `Ticker`, the periodic loop that ends on it.

use tokio::sync::watch;

/// Triggers shutdown of everything holding a `Signal` from it.
#[derive(Debug)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

/// Completes once shutdown has been triggered.
#[derive(Clone, Debug)]
pub struct Signal {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    pub fn new() -> (Shutdown, Signal) {
        let (sender, receiver) = watch::channel(false);
        (Shutdown { sender }, Signal { receiver })
    }

    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Signal {
    /// A ticker firing every `period` until shutdown (missed ticks are delayed, not bunched).
    pub fn every(self, period: std::time::Duration) -> Ticker {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticker {
            interval,
            stop: self,
        }
    }

    /// Waits for shutdown. Cancel-safe.
    pub async fn wait(mut self) {
        // An error means the trigger was dropped, which also means shut down.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}

/// The periodic loop of a background task: `while ticker.tick().await { .. }`.
#[derive(Debug)]
pub struct Ticker {
    interval: tokio::time::Interval,
    stop: Signal,
}

impl Ticker {
    /// Waits for the next tick: `true`, or `false` once shutdown has been triggered.
    /// Cancel-safe.
    pub async fn tick(&mut self) -> bool {
        if *self.stop.receiver.borrow() {
            return false;
        }
        let stopped = self.stop.receiver.wait_for(|stop| *stop);
        tokio::select! {
            _ = self.interval.tick() => true,
            _ = stopped => false,
        }
    }
}
