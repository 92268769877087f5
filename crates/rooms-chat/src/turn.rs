//! One socket's events handled one at a time, in the order they arrived.
//!
//! socketioxide runs every event handler in a task of its own, so two
//! events of one socket may run at once and finish in any order: a message
//! sent right after a join could be refused as `not_in_room`, and two
//! messages of one sender could get their ids swapped. A [`Turn`] is taken
//! from the socket's chain synchronously when the packet is read (it is an
//! extractor, see `session`, and extractors run before the handler is
//! spawned), so turns follow the packet order; a handler first waits for
//! the previous turn to end.

use tokio::sync::oneshot;

/// The right to handle one event once every earlier event of the socket is done.
pub struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped when this turn ends, which lets the next one start.
    _done: oneshot::Sender<()>,
}

impl Turn {
    /// Waits until every earlier event of this socket has been handled.
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // Err only means the previous turn's sender was dropped: it ended.
            let _ = previous.await;
        }
    }
}

/// The end of the chain of turns, kept in the session.
#[derive(Default)]
pub struct TurnChain {
    last: parking_lot::Mutex<Option<oneshot::Receiver<()>>>,
}

impl TurnChain {
    pub fn take(&self) -> Turn {
        let (done, next) = oneshot::channel();
        let previous = self.last.lock().replace(next);
        Turn {
            previous,
            _done: done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_run_in_the_order_they_were_taken() {
        let chain = TurnChain::default();
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in 0..5u64 {
            let mut turn = chain.take();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                // Later turns are quicker, yet must wait.
                tokio::time::sleep(Duration::from_millis(20 - 4 * n)).await;
                turn.wait().await;
                order.lock().push(n);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4]);
    }
}
