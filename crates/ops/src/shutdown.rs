//! One shutdown signal for the whole process: SIGINT or SIGTERM triggers it,
//! and every task (accept loop, sockets, streams, feeds) awaits it.

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

/// A cheap, cloneable handle on the process-wide shutdown.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A shutdown that only `trigger` fires (tests, embedding).
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A shutdown that SIGINT and SIGTERM fire. The handlers are installed
    /// here, before any task runs, so that a failure is the caller's error
    /// rather than a task that stops listening without a word.
    pub fn on_signals() -> Result<Shutdown> {
        let signals = Signals::install()?;
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            signals.wait().await;
            tracing::info!("shutdown signal received");
            trigger.trigger();
        });
        Ok(shutdown)
    }

    /// Begins the shutdown: every task waiting on this signal wakes.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether the shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    /// An owned future for APIs that want `'static` shutdown futures.
    pub fn wait_owned(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }
}

/// The installed handlers of the signals that stop the process.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Ctrl-C, where there are no Unix signals.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Result<Signals> {
        Ok(Signals)
    }

    async fn wait(self) {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot wait for Ctrl-C: only a kill stops the process");
            std::future::pending::<()>().await;
        }
    }
}
