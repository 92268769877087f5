//! Which new connections the accept loop serves. Every client holds a file
//! descriptor, and a process out of descriptors cannot even answer its
//! health check, so the loop keeps to a budget below the open-files limit:
//!
//! - at most `MAX_CONNECTIONS` at once (default: the open-files limit less a
//!   reserve for Redis, the listener, `/healthz`, `/metrics` and refusals);
//! - at most `MAX_CONNECTIONS_PER_IP` from one client address (`0`: no limit),
//!   so one client cannot take every slot;
//! - at most `HANDSHAKE_RATE` new connections per second from one address,
//!   bursts up to twice that (`0`: no limit).
//!
//! The client address is the TCP peer's, or from `X-Forwarded-For` when the
//! peer is one of `TRUSTED_PROXIES` ([`crate::forwarded`]). A connection
//! over a limit is answered `503` (server full) or `429` (this client's
//! limit) with `Retry-After` before any request reaches the app, so no
//! upgrade or stream starts; `/healthz` and `/metrics` are served anyway from
//! a reserve of their own ([`PROBE_SLOTS`]), which refusals cannot use up
//! (they have [`REFUSAL_SLOTS`]). Each refusal is counted in `/metrics` as
//! `connections_refused_total{reason}`.

use crate::config::env_or;
use crate::forwarded::TrustedProxies;
use crate::metrics::ProcessMetrics;
use crate::rate::TokenBucket;
pub use crate::refusal::Reason;
use anyhow::Result;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Health checks and scrapes served beyond the limits at once.
pub const PROBE_SLOTS: usize = 16;

/// Refused connections held at once while their answer is delivered (and
/// while they show whether they are a probe). Beyond this a refused
/// connection is answered with what its socket takes at once and closed.
pub const REFUSAL_SLOTS: usize = 32;

/// The paths served even when every limit is reached.
pub const PROBE_PATHS: [&str; 2] = ["/healthz", "/metrics"];

/// The connection limits, from the environment or set by a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// `MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// `MAX_CONNECTIONS_PER_IP`, `0` for no limit.
    pub max_connections_per_ip: usize,
    /// `HANDSHAKE_RATE`: new connections per second per address, `0` for no limit.
    pub handshake_rate: u32,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
    /// Where requests may name a session they continue (`sid=`, Engine.IO's
    /// long-polling under `/socket.io/`): a new connection that does takes
    /// no handshake token, since a polling client without keep-alive opens
    /// one connection per request. Set by the app, not the environment.
    pub session_path: Option<&'static str>,
}

impl AdmissionConfig {
    /// Enough for a household or an office behind one NAT, far from what
    /// one client needs (a page holds one or two connections).
    pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
    /// A page that reconnects with backoff opens a few connections a
    /// second; a reconnect storm from a NAT gets a burst of twice this.
    pub const DEFAULT_HANDSHAKE_RATE: u32 = 50;

    /// `MAX_CONNECTIONS`, `MAX_CONNECTIONS_PER_IP`, `HANDSHAKE_RATE`,
    /// `TRUSTED_PROXIES`. Read after the open-files limit was raised
    /// ([`crate::limits::raise_open_files_limit`]), since the default
    /// `MAX_CONNECTIONS` derives from it.
    pub fn from_env() -> Result<AdmissionConfig> {
        Ok(AdmissionConfig {
            max_connections: env_or(
                "MAX_CONNECTIONS",
                default_max_connections(crate::limits::open_files_limit()),
            )?,
            max_connections_per_ip: env_or(
                "MAX_CONNECTIONS_PER_IP",
                Self::DEFAULT_MAX_CONNECTIONS_PER_IP,
            )?,
            handshake_rate: env_or("HANDSHAKE_RATE", Self::DEFAULT_HANDSHAKE_RATE)?,
            trusted_proxies: env_or("TRUSTED_PROXIES", TrustedProxies::default())?,
            session_path: None,
        })
    }

    /// No limit but `max_connections`: for tests of other things.
    pub fn only_max_connections(max_connections: usize) -> AdmissionConfig {
        AdmissionConfig {
            max_connections,
            max_connections_per_ip: 0,
            handshake_rate: 0,
            trusted_proxies: TrustedProxies::default(),
            session_path: None,
        }
    }
}

/// The open-files limit less a reserve: an eighth of it, at least 64 (the
/// reserve slots, Redis, the listener and the runtime's own descriptors)
/// and at most 1024, and never more than half.
pub fn default_max_connections(open_files_limit: u64) -> usize {
    let limit = usize::try_from(open_files_limit).unwrap_or(usize::MAX);
    let reserve = (limit / 8).clamp(64, 1024).min(limit / 2);
    limit - reserve
}

/// What becomes of a new connection.
pub enum Verdict {
    /// Serve it; the ticket frees its slot when dropped.
    Admit(Ticket),
    /// Refuse it, or serve it only for a probe path. `reserve` is the
    /// refusal slot it may hold meanwhile, `None` when they are used up.
    Refuse {
        reason: Reason,
        reserve: Option<Ticket>,
    },
}

/// The accept loop's budget of connections, shared by its tasks.
pub struct Admission {
    config: AdmissionConfig,
    state: Mutex<State>,
    metrics: &'static ProcessMetrics,
}

#[derive(Default)]
struct State {
    open: usize,
    probes_open: usize,
    refusals_open: usize,
    clients: HashMap<IpAddr, Client>,
    /// The map is swept of forgotten clients when it grows past this.
    sweep_above: usize,
}

struct Client {
    open: usize,
    handshakes: TokenBucket,
}

/// The map of clients is not swept below this many entries.
const MIN_SWEEP_SIZE: usize = 1024;

impl Admission {
    pub fn new(config: AdmissionConfig) -> Arc<Admission> {
        Arc::new(Admission {
            config,
            state: Mutex::new(State {
                sweep_above: MIN_SWEEP_SIZE,
                ..State::default()
            }),
            metrics: crate::metrics::process(),
        })
    }

    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// Whether `X-Forwarded-For` from `peer` names the client.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.config.trusted_proxies.trusts(peer)
    }

    /// Decides on a new connection from `client`. A refusal is counted.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Verdict {
        self.admit_with(client, true)
    }

    /// As [`Admission::admit`], but without taking a handshake token: the
    /// caller looks at the first request and calls
    /// [`Admission::take_handshake`] unless it continues a session.
    pub fn admit_deferring_handshake(self: &Arc<Self>, client: IpAddr) -> Verdict {
        self.admit_with(client, false)
    }

    /// The handshake token of a connection admitted by
    /// [`Admission::admit_deferring_handshake`]; without one the connection
    /// is refused (and its slot given back).
    pub fn take_handshake(self: &Arc<Self>, client: IpAddr, ticket: Ticket) -> Verdict {
        let mut state = self.state.lock();
        let has_token = self.config.handshake_rate == 0
            || state
                .clients
                .get_mut(&client)
                .is_none_or(|entry| entry.handshakes.try_take_at(Instant::now()));
        if has_token {
            return Verdict::Admit(ticket);
        }
        drop(state);
        drop(ticket);
        let mut state = self.state.lock();
        self.metrics.count_refusal(Reason::HandshakeRate.as_str());
        let reserve = self.take(&mut state, Reserve::Refusal);
        Verdict::Refuse {
            reason: Reason::HandshakeRate,
            reserve,
        }
    }

    fn admit_with(self: &Arc<Self>, client: IpAddr, take_handshake: bool) -> Verdict {
        let now = Instant::now();
        let mut state = self.state.lock();
        let refused = |state: &mut State, reason: Reason| {
            self.metrics.count_refusal(reason.as_str());
            let reserve = self.take(state, Reserve::Refusal);
            Verdict::Refuse { reason, reserve }
        };
        let rate = self.config.handshake_rate;
        let per_ip = self.config.max_connections_per_ip;
        if rate > 0 || per_ip > 0 {
            state.sweep_if_large(now);
            let entry = state.clients.entry(client).or_insert_with(|| Client {
                open: 0,
                handshakes: TokenBucket::new(rate),
            });
            if take_handshake && !entry.handshakes.try_take_at(now) {
                return refused(&mut state, Reason::HandshakeRate);
            }
            if per_ip > 0 && entry.open >= per_ip {
                return refused(&mut state, Reason::PerIp);
            }
        }
        if state.open >= self.config.max_connections {
            return refused(&mut state, Reason::MaxConnections);
        }
        state.open += 1;
        if let Some(entry) = state.clients.get_mut(&client) {
            entry.open += 1;
        }
        self.metrics.tcp_connections.inc();
        Verdict::Admit(Ticket {
            admission: self.clone(),
            slot: Slot::Regular(client),
        })
    }

    /// A slot to serve a probe (health check or scrape) beyond the limits,
    /// if one is free.
    pub fn probe_slot(self: &Arc<Self>) -> Option<Ticket> {
        let mut state = self.state.lock();
        self.take(&mut state, Reserve::Probe)
    }

    /// A slot to hold a refused connection while it is answered, if one is
    /// free.
    pub fn refusal_slot(self: &Arc<Self>) -> Option<Ticket> {
        let mut state = self.state.lock();
        self.take(&mut state, Reserve::Refusal)
    }

    fn take(self: &Arc<Self>, state: &mut State, reserve: Reserve) -> Option<Ticket> {
        let (open, bound) = match reserve {
            Reserve::Probe => (&mut state.probes_open, PROBE_SLOTS),
            Reserve::Refusal => (&mut state.refusals_open, REFUSAL_SLOTS),
        };
        if *open >= bound {
            return None;
        }
        *open += 1;
        self.metrics.tcp_connections.inc();
        Some(Ticket {
            admission: self.clone(),
            slot: Slot::Reserve(reserve),
        })
    }

    /// Counts a refusal made outside [`Admission::admit`].
    pub fn count_refusal(&self, reason: Reason) {
        self.metrics.count_refusal(reason.as_str());
    }

    /// Connections admitted and open now (not counting the reserve).
    pub fn open(&self) -> usize {
        self.state.lock().open
    }

    /// Client addresses remembered now, for the test that they are forgotten.
    pub fn remembered_clients(&self) -> usize {
        self.state.lock().clients.len()
    }

    fn release(&self, slot: &Slot) {
        let mut state = self.state.lock();
        match slot {
            Slot::Reserve(Reserve::Probe) => state.probes_open -= 1,
            Slot::Reserve(Reserve::Refusal) => state.refusals_open -= 1,
            Slot::Regular(client) => {
                state.open -= 1;
                if let Some(entry) = state.clients.get_mut(client) {
                    entry.open -= 1;
                }
            }
        }
        self.metrics.tcp_connections.dec();
    }
}

impl State {
    /// Forgets clients with nothing open whose handshake bucket has
    /// refilled: a new entry would behave the same. Amortized: the map is
    /// swept only when it has doubled since the last sweep.
    fn sweep_if_large(&mut self, now: Instant) {
        if self.clients.len() < self.sweep_above {
            return;
        }
        self.clients
            .retain(|_, client| client.open > 0 || !client.handshakes.is_full_at(now));
        self.sweep_above = (self.clients.len() * 2).max(MIN_SWEEP_SIZE);
    }
}

enum Slot {
    Regular(IpAddr),
    Reserve(Reserve),
}

#[derive(Clone, Copy)]
enum Reserve {
    Probe,
    Refusal,
}

/// One connection's place in the budget, given back when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    slot: Slot,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(&self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn reason(verdict: &Verdict) -> Option<Reason> {
        match verdict {
            Verdict::Admit(_) => None,
            Verdict::Refuse { reason, .. } => Some(*reason),
        }
    }

    #[test]
    fn the_default_cap_leaves_a_reserve_below_the_open_files_limit() {
        assert_eq!(default_max_connections(1024), 1024 - 128);
        assert_eq!(default_max_connections(256), 256 - 64);
        assert_eq!(default_max_connections(100), 50);
        assert_eq!(default_max_connections(1 << 20), (1 << 20) - 1024);
    }

    #[test]
    fn the_global_cap_refuses_with_503_and_frees_slots_on_drop() {
        let admission = Admission::new(AdmissionConfig::only_max_connections(2));
        let first = admission.admit(ip(1));
        let second = admission.admit(ip(2));
        let third = admission.admit(ip(3));
        assert_eq!(reason(&first), None);
        assert_eq!(reason(&second), None);
        assert_eq!(reason(&third), Some(Reason::MaxConnections));
        assert_eq!(
            Reason::MaxConnections.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        drop(first);
        assert_eq!(admission.open(), 1);
        assert_eq!(reason(&admission.admit(ip(3))), None);
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let admission = Admission::new(AdmissionConfig {
            max_connections_per_ip: 2,
            ..AdmissionConfig::only_max_connections(100)
        });
        let held: Vec<_> = (0..2).map(|_| admission.admit(ip(1))).collect();
        assert!(held.iter().all(|verdict| reason(verdict).is_none()));
        assert_eq!(reason(&admission.admit(ip(1))), Some(Reason::PerIp));
        assert_eq!(Reason::PerIp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reason(&admission.admit(ip(2))), None);
        drop(held);
        assert_eq!(reason(&admission.admit(ip(1))), None);
    }

    #[test]
    fn the_handshake_rate_allows_a_burst_of_twice_the_rate() {
        let admission = Admission::new(AdmissionConfig {
            handshake_rate: 5,
            ..AdmissionConfig::only_max_connections(100)
        });
        let verdicts: Vec<_> = (0..12).map(|_| admission.admit(ip(1))).collect();
        let admitted = verdicts.iter().filter(|v| reason(v).is_none()).count();
        assert_eq!(admitted, 10);
        assert_eq!(reason(&verdicts[11]), Some(Reason::HandshakeRate));
        assert_eq!(reason(&admission.admit(ip(2))), None);
    }

    #[test]
    fn refusals_cannot_use_up_the_probes_reserve() {
        let admission = Admission::new(AdmissionConfig::only_max_connections(0));
        let refusals: Vec<_> = (0..REFUSAL_SLOTS + 3)
            .map(|_| admission.admit(ip(1)))
            .collect();
        let with_reserve = refusals
            .iter()
            .filter(|v| {
                matches!(
                    v,
                    Verdict::Refuse {
                        reserve: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(with_reserve, REFUSAL_SLOTS);
        assert!(admission.refusal_slot().is_none());
        let probes: Vec<_> = (0..PROBE_SLOTS).map(|_| admission.probe_slot()).collect();
        assert!(probes.iter().all(Option::is_some));
        assert!(admission.probe_slot().is_none());
        drop(refusals);
        assert!(admission.refusal_slot().is_some());
    }

    #[test]
    fn forgotten_clients_leave_the_map() {
        let admission = Admission::new(AdmissionConfig {
            max_connections_per_ip: 10,
            ..AdmissionConfig::only_max_connections(100_000)
        });
        for a in 0..8u8 {
            for b in 0..=255u8 {
                drop(admission.admit(IpAddr::from([10, 0, a, b])));
            }
        }
        // Without a handshake rate every bucket is always full, so clients
        // with nothing open are swept whenever the map reaches its bound.
        assert!(admission.remembered_clients() <= MIN_SWEEP_SIZE);
    }
}
