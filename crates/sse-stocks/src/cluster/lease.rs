//! The producer lease: which one instance steps the feed.

use super::Cluster;
use fred::prelude::{Error, Expiration, KeysInterface, SetOptions};
use std::time::Duration;

/// How long the lease outlives its holder's last renewal.
pub const TTL: Duration = Duration::from_millis(2000);
/// How often a standby instance tries to take the lease.
pub const POLL: Duration = Duration::from_millis(500);
/// How often the holder renews (besides every append), well inside [`TTL`].
const RENEW_EVERY: Duration = Duration::from_millis(600);

impl Cluster {
    /// Renews the lease if it is ours, or takes it if it is free.
    pub(super) async fn acquire_lease(&self) -> Result<bool, Error> {
        if self.renew_lease().await? {
            return Ok(true);
        }
        let set: Option<String> = self
            .commands
            .set(
                &self.keys.lease,
                &self.token,
                Some(Expiration::PX(TTL.as_millis() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await?;
        Ok(set.is_some())
    }

    async fn renew_lease(&self) -> Result<bool, Error> {
        let renewed: i64 = self
            .scripts
            .renew
            .run(
                &self.commands,
                vec![self.keys.lease.clone()],
                vec![self.token.clone(), TTL.as_millis().to_string()],
            )
            .await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up (at shutdown), so another instance takes over at
    /// once rather than after the TTL.
    pub(super) async fn release_lease(&self) -> Result<(), Error> {
        let _deleted: i64 = self
            .scripts
            .release
            .run(
                &self.commands,
                vec![self.keys.lease.clone()],
                vec![self.token.clone()],
            )
            .await?;
        Ok(())
    }

    /// Renews the lease until it is lost (or Redis fails); returns then.
    /// Appends renew it too, but a `TICK_MS` longer than the TTL would let
    /// it lapse between them.
    pub(super) async fn keep_lease(&self) {
        let mut renewals = tokio::time::interval(RENEW_EVERY);
        loop {
            renewals.tick().await;
            match self.renew_lease().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("the producer lease was lost");
                    return;
                }
                Err(error) => {
                    self.redis_failed("renewing the lease", &error);
                    return;
                }
            }
        }
    }
}
