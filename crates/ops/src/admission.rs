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
//! An admitted connection holds its [`Ticket`] for its whole life: the
//! accept loop ties it to the connection's stream, which an upgraded
//! WebSocket keeps, so the place is given back exactly once, when the
//! socket closes.
//!
//! The client address is the TCP peer's, or from `X-Forwarded-For` when the
//! peer is one of `TRUSTED_PROXIES` ([`crate::forwarded`]). A connection
//! over a limit is refused for a [`Reason`] (counted in `/metrics` as
//! `connections_refused_total{reason}`) before any request reaches the app,
//! so no upgrade or stream starts. It first waits among the refused
//! ([`WaitingPlace`]) to show whether it asks for `/healthz` or `/metrics`,
//! which are served anyway from a reserve of their own ([`PROBE_SLOTS`]);
//! the newest refused connection sends the oldest away, so that a flood of
//! silent connections cannot keep a probe from being seen.

use crate::env::env_or;
use crate::forwarded::TrustedProxies;
use crate::metrics::ProcessMetrics;
use crate::rate::TokenBucket;
use anyhow::Result;
use http::StatusCode;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Health checks and scrapes served beyond the limits at once.
pub const PROBE_SLOTS: usize = 16;

/// Refused connections whose answer lingers at once until it is read.
/// Beyond this a refused connection is answered with what its socket takes
/// at once and closed.
pub const REFUSAL_SLOTS: usize = 16;

/// Refused connections that wait at once to show whether they are a probe.
pub const WAITING_PLACES: usize = 32;

/// Descriptors a process keeps beside its connections at the least: the
/// reserves above, and the listener, Redis and the runtime's own.
const MIN_RESERVE: usize = PROBE_SLOTS + REFUSAL_SLOTS + WAITING_PLACES + 32;

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

/// The open-files limit less a reserve: an eighth of it, at least
/// `MIN_RESERVE` (the probe, refusal and waiting places plus 32) and at
/// most 1024, and never more than half.
pub fn default_max_connections(open_files_limit: u64) -> usize {
    let limit = usize::try_from(open_files_limit).unwrap_or(usize::MAX);
    let reserve = (limit / 8).clamp(MIN_RESERVE, 1024).min(limit / 2);
    limit - reserve
}

/// Why a connection was refused, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `MAX_CONNECTIONS` reached.
    MaxConnections,
    /// `MAX_CONNECTIONS_PER_IP` reached for this client.
    PerIp,
    /// `HANDSHAKE_RATE` exceeded by this client.
    HandshakeRate,
    /// The process ran out of file descriptors anyway.
    OutOfDescriptors,
}

impl Reason {
    /// The label of `connections_refused_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MaxConnections => "max_connections",
            Reason::PerIp => "per_ip",
            Reason::HandshakeRate => "handshake_rate",
            Reason::OutOfDescriptors => "out_of_descriptors",
        }
    }

    /// 503 when the server is full, 429 when this client asks too much.
    pub fn status(self) -> StatusCode {
        match self {
            Reason::MaxConnections | Reason::OutOfDescriptors => StatusCode::SERVICE_UNAVAILABLE,
            Reason::PerIp | Reason::HandshakeRate => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A full server frees slots as clients leave, a rate limit refills
    /// within a second.
    pub fn retry_after(self) -> Duration {
        match self {
            Reason::HandshakeRate => Duration::from_secs(1),
            _ => Duration::from_secs(5),
        }
    }
}

/// What becomes of a new connection.
pub enum Verdict {
    /// Serve it; the ticket frees its slot when dropped.
    Admit(Ticket),
    /// Refuse it (a probe among the refused is still served).
    Refuse(Reason),
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
    /// The refused connections waiting to show whether they are probes,
    /// oldest first, each with the token that sends it away.
    waiting: VecDeque<(u64, CancellationToken)>,
    next_waiting_id: u64,
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
    /// A budget with `config`'s limits, shared by the accept loop's tasks.
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

    /// The limits.
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
        self.count_refusal(Reason::HandshakeRate);
        Verdict::Refuse(Reason::HandshakeRate)
    }

    fn admit_with(self: &Arc<Self>, client: IpAddr, take_handshake: bool) -> Verdict {
        let now = Instant::now();
        let mut state = self.state.lock();
        let refused = |reason: Reason| {
            self.count_refusal(reason);
            Verdict::Refuse(reason)
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
                return refused(Reason::HandshakeRate);
            }
            if per_ip > 0 && entry.open >= per_ip {
                return refused(Reason::PerIp);
            }
        }
        if state.open >= self.config.max_connections {
            return refused(Reason::MaxConnections);
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

    /// A place for a refused connection to wait in while it shows whether
    /// it is a probe. There is always one: when all are taken, the oldest
    /// waiting connection is sent away to make room.
    pub fn wait_as_refused(self: &Arc<Self>) -> WaitingPlace {
        let mut state = self.state.lock();
        if state.waiting.len() >= WAITING_PLACES
            && let Some((_, oldest)) = state.waiting.pop_front()
        {
            oldest.cancel();
        }
        let id = state.next_waiting_id;
        state.next_waiting_id += 1;
        let sent_away = CancellationToken::new();
        state.waiting.push_back((id, sent_away.clone()));
        self.metrics.tcp_connections.inc();
        WaitingPlace {
            admission: self.clone(),
            id,
            sent_away,
        }
    }

    /// A slot to hold a refused connection while its answer lingers, if
    /// one is free.
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

    fn leave_waiting(&self, id: u64) {
        let mut state = self.state.lock();
        // Gone already when it was sent away.
        if let Some(index) = state.waiting.iter().position(|(waiting, _)| *waiting == id) {
            state.waiting.remove(index);
        }
        self.metrics.tcp_connections.dec();
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

/// A refused connection's place among those waiting to show whether they
/// are probes ([`Admission::wait_as_refused`]), given back when dropped.
pub struct WaitingPlace {
    admission: Arc<Admission>,
    id: u64,
    sent_away: CancellationToken,
}

impl WaitingPlace {
    /// Completes when a newer refused connection needed the place.
    pub async fn sent_away(&self) {
        self.sent_away.cancelled().await;
    }
}

impl Drop for WaitingPlace {
    fn drop(&mut self) {
        self.admission.leave_waiting(self.id);
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
            Verdict::Refuse(reason) => Some(*reason),
        }
    }

    #[test]
    fn the_default_cap_leaves_a_reserve_below_the_open_files_limit() {
        assert_eq!(default_max_connections(4096), 4096 - 512);
        assert_eq!(default_max_connections(1024), 1024 - 128);
        assert_eq!(default_max_connections(512), 512 - MIN_RESERVE);
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
    fn the_reserves_are_bounded_and_come_back() {
        let admission = Admission::new(AdmissionConfig::only_max_connections(0));
        let lingering: Vec<_> = (0..REFUSAL_SLOTS)
            .map(|_| admission.refusal_slot())
            .collect();
        assert!(lingering.iter().all(Option::is_some));
        assert!(admission.refusal_slot().is_none());
        let probes: Vec<_> = (0..PROBE_SLOTS).map(|_| admission.probe_slot()).collect();
        assert!(probes.iter().all(Option::is_some));
        assert!(admission.probe_slot().is_none());
        drop(lingering);
        assert!(admission.refusal_slot().is_some());
    }

    #[tokio::test]
    async fn the_newest_waiting_refusal_sends_the_oldest_away() {
        let admission = Admission::new(AdmissionConfig::only_max_connections(0));
        let places: Vec<_> = (0..WAITING_PLACES)
            .map(|_| admission.wait_as_refused())
            .collect();
        let newest = admission.wait_as_refused();
        let sent_away = |place: &WaitingPlace| place.sent_away.is_cancelled();
        assert!(sent_away(&places[0]), "the oldest makes room");
        assert!(places[1..].iter().all(|place| !sent_away(place)));
        assert!(!sent_away(&newest));
        places[0].sent_away().await;
        drop(places);
        assert_eq!(admission.state.lock().waiting.len(), 1);
        drop(newest);
        assert!(admission.state.lock().waiting.is_empty());
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
