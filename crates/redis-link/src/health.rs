//! Whether the Redis link works: set by the tasks that use it, read by
//! `/healthz` and by handlers that answer `unavailable` at once instead of
//! waiting for a command that is bound to time out.

use std::sync::atomic::{AtomicBool, Ordering};

/// The link's state, shared by whoever uses or reports the link.
pub struct LinkHealth {
    up: AtomicBool,
}

impl LinkHealth {
    /// A link is taken as down until a command has gone through.
    pub fn new() -> LinkHealth {
        LinkHealth {
            up: AtomicBool::new(false),
        }
    }

    /// Records the outcome of a command; logs each change once.
    pub fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!("Redis link is up");
            } else {
                tracing::warn!("Redis link is down");
            }
        }
    }

    /// Whether the last command went through.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

impl Default for LinkHealth {
    fn default() -> LinkHealth {
        LinkHealth::new()
    }
}
