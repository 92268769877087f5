//! The price feed: every symbol moves by a geometric random walk, one step
//! every `TICK_MS`. The walk is pure (no clock, no I/O) so a seed makes it
//! reproducible. [`drive`] is the one tick loop: in embedded mode [`run`]
//! drives the walk into the hub, in cluster mode the lease holder drives it
//! into Redis (`cluster::producer`).

use crate::hub::{Hub, NewTick};
use crate::symbols::SymbolTable;
use ops::Shutdown;
use protocol::sse::Quote;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;

/// Standard deviation of the log-return over one second: about the jitter
/// of a liquid stock's last trade, so a page shows movement at any `TICK_MS`.
const VOLATILITY_PER_SQRT_SECOND: f64 = 0.002;

/// One symbol's walk: where it is and where it opened (for `change`).
#[derive(Debug, Clone, Copy)]
struct Walker {
    price: f64,
    open: f64,
}

#[derive(Debug)]
pub struct RandomWalk {
    rng: StdRng,
    symbols: Vec<String>,
    walkers: Vec<Walker>,
    /// Standard deviation of one step's log-return.
    step_volatility: f64,
}

impl RandomWalk {
    /// A walk starting at the symbols' start prices.
    pub fn new(symbols: &SymbolTable, seed: u64, tick: Duration) -> RandomWalk {
        RandomWalk {
            rng: StdRng::seed_from_u64(seed),
            symbols: symbols
                .infos()
                .iter()
                .map(|info| info.symbol.clone())
                .collect(),
            walkers: symbols
                .infos()
                .iter()
                .map(|info| Walker {
                    price: info.price,
                    open: info.price,
                })
                .collect(),
            step_volatility: VOLATILITY_PER_SQRT_SECOND * tick.as_secs_f64().sqrt(),
        }
    }

    /// Continues from published quotes (a new producer taking over), so the
    /// prices go on from where they were instead of jumping back to the start.
    pub fn continue_from(&mut self, quotes: &[Quote]) {
        for quote in quotes {
            let Some(index) = self
                .symbols
                .iter()
                .position(|symbol| *symbol == quote.symbol)
            else {
                continue;
            };
            let open = quote.price - quote.change;
            if quote.price.is_finite() && quote.price > 0.0 && open.is_finite() && open > 0.0 {
                self.walkers[index] = Walker {
                    price: quote.price,
                    open,
                };
            }
        }
    }

    /// Moves every symbol one step; returns their new quotes stamped `ts`.
    pub fn step(&mut self, ts: i64) -> Vec<Quote> {
        let mut quotes = Vec::with_capacity(self.walkers.len());
        for (walker, symbol) in self.walkers.iter_mut().zip(&self.symbols) {
            let shock = standard_normal(&mut self.rng) * self.step_volatility;
            // Geometric: the log-price takes the step, so a price never
            // reaches zero and moves in proportion to its level.
            walker.price *= shock.exp();
            quotes.push(quote_of(symbol, *walker, ts));
        }
        quotes
    }

    /// The current quotes without moving.
    pub fn quotes(&self, ts: i64) -> Vec<Quote> {
        self.walkers
            .iter()
            .zip(&self.symbols)
            .map(|(walker, symbol)| quote_of(symbol, *walker, ts))
            .collect()
    }
}

/// Prices in cents, as an exchange quotes them; `change` since the open.
fn quote_of(symbol: &str, walker: Walker, ts: i64) -> Quote {
    let price = round_cents(walker.price);
    let open = round_cents(walker.open);
    let change = round_cents(price - open);
    Quote {
        symbol: symbol.to_owned(),
        price,
        change,
        change_pct: round_cents(change / open * 100.0),
        ts,
    }
}

fn round_cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// One draw of N(0, 1) by the Box-Muller transform.
fn standard_normal(rng: &mut StdRng) -> f64 {
    // `1.0 - u` is in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The seed from `SEED`, or a random one.
pub fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| rand::rng().random())
}

/// The one tick loop of both modes: a step of the walk every `tick`, handed
/// to `publish`, until shutdown or until `publish` answers false (a cluster
/// producer that lost its lease).
pub async fn drive<Publish, Published>(
    walk: &mut RandomWalk,
    tick: Duration,
    shutdown: &Shutdown,
    mut publish: Publish,
) where
    Publish: FnMut(Vec<Quote>) -> Published,
    Published: Future<Output = bool>,
{
    let mut interval = tokio::time::interval(tick);
    // A stalled process catches up by moving on, not by a burst of steps.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait() => return,
        }
        if !publish(walk.step(protocol::now_ms())).await {
            return;
        }
    }
}

/// Embedded mode: the walk straight into the hub, with ids
/// `<start ms>-<seq>` of this process.
pub async fn run(hub: Arc<Hub>, mut walk: RandomWalk, tick: Duration, shutdown: Shutdown) {
    let epoch = protocol::now_ms().max(0) as u64;
    let mut seq = 0u64;
    drive(&mut walk, tick, &shutdown, |quotes| {
        let ticks: Vec<NewTick> = quotes
            .into_iter()
            .map(|quote| {
                seq += 1;
                NewTick {
                    id: crate::event_id::EventId::new(epoch, seq),
                    quote,
                }
            })
            .collect();
        hub.metrics().ticks_produced.inc_by(ticks.len() as u64);
        hub.publish(ticks);
        std::future::ready(true)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(seed: u64) -> RandomWalk {
        RandomWalk::new(&SymbolTable::defaults(), seed, Duration::from_secs(1))
    }

    #[test]
    fn a_seed_makes_the_walk_reproducible() {
        let (mut a, mut b, mut c) = (walk(7), walk(7), walk(8));
        let steps_a: Vec<_> = (0..50).map(|_| a.step(0)).collect();
        let steps_b: Vec<_> = (0..50).map(|_| b.step(0)).collect();
        let steps_c: Vec<_> = (0..50).map(|_| c.step(0)).collect();
        assert_eq!(steps_a, steps_b);
        assert_ne!(steps_a, steps_c);
    }

    #[test]
    fn every_symbol_moves_with_consistent_change_fields() {
        let mut walk = walk(1);
        let start = walk.quotes(0);
        let mut moved = vec![false; start.len()];
        for _ in 0..200 {
            for (index, quote) in walk.step(42).into_iter().enumerate() {
                assert_eq!(quote.symbol, start[index].symbol);
                assert_eq!(quote.ts, 42);
                assert!(quote.price > 0.0);
                let open = start[index].price;
                assert!((quote.change - (quote.price - open)).abs() < 0.011);
                assert!((quote.change_pct - quote.change / open * 100.0).abs() < 0.011);
                moved[index] |= quote.price != open;
            }
        }
        assert!(moved.iter().all(|moved| *moved));
    }

    #[test]
    fn steps_are_small_and_unbiased() {
        let mut walk = walk(3);
        let mut previous = walk.quotes(0);
        for _ in 0..1000 {
            let quotes = walk.step(0);
            for (now, before) in quotes.iter().zip(&previous) {
                // Six standard deviations (0.2 % each) never happen in 10,000 draws.
                assert!((now.price / before.price - 1.0).abs() < 0.013);
            }
            previous = quotes;
        }
    }

    #[test]
    fn a_takeover_continues_from_the_published_prices() {
        let mut first = walk(1);
        for _ in 0..100 {
            first.step(0);
        }
        let published = first.quotes(0);
        let mut second = walk(2);
        second.continue_from(&published);
        assert_eq!(second.quotes(0), published);
        let next = second.step(0);
        assert!((next[0].price / published[0].price - 1.0).abs() < 0.013);
    }
}
