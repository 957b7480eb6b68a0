//! The node's shutdown signal: one `Shutdown` trigger, any number of cloned `Signal`s that
//! background tasks await.

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
    /// Waits for shutdown. Cancel-safe.
    pub async fn wait(mut self) {
        // An error means the trigger was dropped, which also means shut down.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}
