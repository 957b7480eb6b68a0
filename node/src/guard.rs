//! Protection for the API and the mesh: per source address, bans after repeated failed
//! authentications and a budget for anonymous requests (unsigned ones, and those that fail
//! before an identity is established: bad signatures, unknown identities, malformed or
//! oversized bodies); per identity (once a signature is checked), a request rate and a cap on
//! waiting long-polls. Many legitimate clients may share one address (a site behind NAT, a
//! mesh node's executors reaching another node), so what a signed client does is limited per
//! identity; while keys cost an attacker nothing, a key nobody in the mesh has fails
//! authentication and charges its source. Exempt networks (loopback by default: the node's
//! own executors and tools) skip every rule.
//!
//! State is in memory and per node: a restart lifts bans. Every method takes the current
//! time, so the rules are tested without sleeping.

use crate::config::GuardConfig;
use crate::metrics::Metrics;
use proto::mesh::Ban;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a source talks to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Api,
    P2p,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Api => "api",
            Side::P2p => "p2p",
        }
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "source {addr} is banned for {remaining_seconds} more seconds after repeated failed \
         authentications"
    )]
    Banned {
        addr: IpAddr,
        remaining_seconds: u64,
    },
    #[error(
        "source {addr} exceeds {per_second} anonymous or failed requests per second (unsigned, \
         bad signatures, unknown identities, malformed or oversized requests)"
    )]
    Anonymous { addr: IpAddr, per_second: u32 },
    #[error("identity {id} exceeds {per_second} requests per second")]
    Rate { id: String, per_second: u32 },
    #[error("identity {id} already has {max} long-polls waiting")]
    LongPolls { id: String, max: usize },
}

impl Refusal {
    /// Seconds after which a refused client may try again (`Retry-After`); `None` for a ban's
    /// 403.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Refusal::Banned { .. } => None,
            Refusal::Anonymous { .. } | Refusal::Rate { .. } | Refusal::LongPolls { .. } => Some(1),
        }
    }
}

/// A token bucket: `tokens` left, refilled at a rate up to a burst.
#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(now: Instant, burst: f64) -> Bucket {
        Bucket {
            tokens: burst,
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant, per_second: u32, burst: f64) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(per_second)).min(burst);
        self.refilled = now;
    }

    /// Refills, then takes a token if one is there.
    fn take(&mut self, now: Instant, per_second: u32, burst: f64) -> bool {
        self.refill(now, per_second, burst);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// True when it has been refilling long enough to be full again.
    fn idle(&self, now: Instant, per_second: u32, burst: f64) -> bool {
        let needed = (burst - self.tokens).max(0.0) / f64::from(per_second.max(1));
        now.saturating_duration_since(self.refilled).as_secs_f64() >= needed
    }
}

/// What is kept about one source on one side.
struct Source {
    /// Failed authentications within the current window, and when the window began.
    failures: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
    /// The budget of anonymous and failed requests.
    anonymous: Bucket,
}

impl Source {
    fn new(now: Instant, burst: f64) -> Source {
        Source {
            failures: 0,
            window_start: now,
            banned_until: None,
            anonymous: Bucket::full(now, burst),
        }
    }

    fn banned(&self, now: Instant) -> Option<Duration> {
        self.banned_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }
}

/// What is kept about one identity (a caller id whose signature was checked).
struct Identity {
    requests: Bucket,
    long_polls: usize,
}

/// The rules; shared by the API and the mesh service.
pub struct Guard {
    config: GuardConfig,
    exempt: Vec<(IpAddr, u8)>,
    /// Tokens a source's anonymous budget holds at most.
    anonymous_burst: f64,
    /// Request tokens an identity's bucket holds at most.
    burst: f64,
    sources: Mutex<HashMap<(Side, IpAddr), Source>>,
    identities: Mutex<HashMap<String, Identity>>,
    metrics: Arc<Metrics>,
}

/// Sources tracked at once; when full, idle ones are forgotten first.
const SOURCES_MAX: usize = 65_536;
/// Identities tracked at once; when full, idle ones (full bucket, no long-poll) are forgotten
/// first.
const IDENTITIES_MAX: usize = 65_536;

/// A long-poll slot; dropping it frees the slot.
pub struct LongPoll {
    guard: Option<(Arc<Guard>, String)>,
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        if let Some((guard, id)) = self.guard.take() {
            let mut identities = guard.identities.lock().expect("guard lock");
            if let Some(entry) = identities.get_mut(&id) {
                entry.long_polls = entry.long_polls.saturating_sub(1);
            }
        }
    }
}

impl Guard {
    /// A guard with `config`, whose exempt networks were checked when the config was.
    pub fn new(config: GuardConfig, metrics: Arc<Metrics>) -> Guard {
        let exempt = config
            .exempt
            .iter()
            .filter_map(|net| parse_network(net).ok())
            .collect();
        // A bucket never holds less than one second of its rate.
        let burst = f64::from(config.request_burst.max(config.requests_per_second));
        let anonymous_burst = f64::from(config.anonymous_burst.max(config.anonymous_per_second));
        Guard {
            anonymous_burst,
            burst,
            config,
            exempt,
            sources: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn is_exempt(&self, source: IpAddr) -> bool {
        self.exempt
            .iter()
            .any(|(net, bits)| in_network(source, *net, *bits))
    }

    /// Admits a request from `source` before anything of it is read, or says why not: the
    /// source is banned, or has spent its budget of anonymous and failed requests. Takes
    /// nothing from the budget (a request that turns out anonymous or failing does, through
    /// `anonymous`, `failed` or `rejected`).
    pub fn admit(&self, side: Side, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        if self.is_exempt(source) {
            return Ok(());
        }
        let mut sources = self.sources.lock().expect("guard lock");
        let Some(entry) = sources.get_mut(&(side, source)) else {
            return Ok(());
        };
        if let Some(left) = entry.banned(now) {
            return Err(Refusal::Banned {
                addr: source,
                remaining_seconds: left.as_secs().max(1),
            });
        }
        let per_second = self.config.anonymous_per_second;
        if per_second == 0 {
            return Ok(());
        }
        entry
            .anonymous
            .refill(now, per_second, self.anonymous_burst);
        if entry.anonymous.tokens < 1.0 {
            drop(sources);
            self.metrics.rate_limited("anonymous");
            return Err(Refusal::Anonymous {
                addr: source,
                per_second,
            });
        }
        Ok(())
    }

    /// An anonymous request (unsigned) from `source`: takes from its budget, or refuses it
    /// when the budget is spent.
    pub fn anonymous(&self, side: Side, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        match self.spend(side, source, now) {
            true => Ok(()),
            false => {
                self.metrics.rate_limited("anonymous");
                Err(Refusal::Anonymous {
                    addr: source,
                    per_second: self.config.anonymous_per_second,
                })
            }
        }
    }

    /// A request from `source` that failed before an identity was established (malformed,
    /// oversized): it takes from the source's budget.
    pub fn rejected(&self, side: Side, source: IpAddr, now: Instant) {
        self.spend(side, source, now);
    }

    /// Takes a token from the anonymous budget of `source`; false when there was none.
    fn spend(&self, side: Side, source: IpAddr, now: Instant) -> bool {
        let per_second = self.config.anonymous_per_second;
        if self.is_exempt(source) || per_second == 0 {
            return true;
        }
        let mut sources = self.sources.lock().expect("guard lock");
        let burst = self.anonymous_burst;
        match tracked(&mut sources, side, source, now, burst, per_second) {
            Some(entry) => entry.anonymous.take(now, per_second, burst),
            None => true,
        }
    }

    /// Refuses a banned source; unlike `admit`, no budget applies (mesh traffic between
    /// members is heavy by nature).
    pub fn banned(&self, side: Side, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        if self.is_exempt(source) {
            return Ok(());
        }
        let sources = self.sources.lock().expect("guard lock");
        match sources.get(&(side, source)).and_then(|s| s.banned(now)) {
            Some(left) => Err(Refusal::Banned {
                addr: source,
                remaining_seconds: left.as_secs().max(1),
            }),
            None => Ok(()),
        }
    }

    /// A failed authentication from `source`; it takes from the source's budget, and bans
    /// the source when it reaches the limit within the window. Returns true when this failure
    /// banned it.
    pub fn failed(&self, side: Side, source: IpAddr, now: Instant) -> bool {
        if self.is_exempt(source) {
            return false;
        }
        self.metrics.auth_failed(side.name());
        let (per_second, burst) = (self.config.anonymous_per_second, self.anonymous_burst);
        let mut sources = self.sources.lock().expect("guard lock");
        let Some(entry) = tracked(&mut sources, side, source, now, burst, per_second) else {
            return false;
        };
        entry.anonymous.take(now, per_second, burst);
        if entry.banned(now).is_some() {
            return false;
        }
        let window = Duration::from_secs(self.config.auth_failure_window_seconds);
        if now.saturating_duration_since(entry.window_start) > window {
            entry.failures = 0;
            entry.window_start = now;
        }
        entry.failures += 1;
        let max = self.config.auth_failures_max;
        if max == 0 || entry.failures < max {
            return false;
        }
        entry.banned_until = Some(now + Duration::from_secs(self.config.ban_seconds));
        let failures = entry.failures;
        drop(sources);
        self.metrics.banned(side.name());
        tracing::warn!(
            side = side.name(),
            %source,
            failures,
            ban_seconds = self.config.ban_seconds,
            "banned a source after repeated failed authentications"
        );
        true
    }

    /// A request signed by `id` (its signature checked) from `source`: takes from the
    /// identity's rate, or refuses it when the identity is over its rate.
    pub fn identity(&self, source: IpAddr, id: &str, now: Instant) -> Result<(), Refusal> {
        let per_second = self.config.requests_per_second;
        if self.is_exempt(source) || per_second == 0 {
            return Ok(());
        }
        let mut identities = self.identities.lock().expect("guard lock");
        let Some(entry) = self.identity_entry(&mut identities, id, now) else {
            return Ok(());
        };
        if entry.requests.take(now, per_second, self.burst) {
            return Ok(());
        }
        drop(identities);
        self.metrics.rate_limited("rate");
        Err(Refusal::Rate {
            id: id.to_string(),
            per_second,
        })
    }

    /// Takes a long-poll slot for identity `id` (from `source`), or refuses when it has its
    /// maximum waiting.
    pub fn long_poll(
        self: &Arc<Self>,
        source: IpAddr,
        id: &str,
        now: Instant,
    ) -> Result<LongPoll, Refusal> {
        let max = self.config.long_polls_per_identity;
        if self.is_exempt(source) || max == 0 {
            return Ok(LongPoll { guard: None });
        }
        let mut identities = self.identities.lock().expect("guard lock");
        let Some(entry) = self.identity_entry(&mut identities, id, now) else {
            return Ok(LongPoll { guard: None });
        };
        if entry.long_polls >= max {
            drop(identities);
            self.metrics.rate_limited("long_polls");
            return Err(Refusal::LongPolls {
                id: id.to_string(),
                max,
            });
        }
        entry.long_polls += 1;
        Ok(LongPoll {
            guard: Some((self.clone(), id.to_string())),
        })
    }

    /// The entry of `id`, created if there is room (forgetting idle identities when the table
    /// is full). `None` when the table is full of active ones: the request is then not
    /// limited rather than refused.
    fn identity_entry<'a>(
        &self,
        identities: &'a mut HashMap<String, Identity>,
        id: &str,
        now: Instant,
    ) -> Option<&'a mut Identity> {
        // A known identity without allocating its key (the path of every signed request).
        if identities.contains_key(id) {
            return identities.get_mut(id);
        }
        let (per_second, burst) = (self.config.requests_per_second, self.burst);
        bounded_entry(
            identities,
            id.to_string(),
            IDENTITIES_MAX,
            |i| i.long_polls > 0 || !i.requests.idle(now, per_second, burst),
            || Identity {
                requests: Bucket::full(now, burst),
                long_polls: 0,
            },
        )
    }

    /// Sources banned now.
    pub fn bans(&self, now: Instant) -> Vec<Ban> {
        let sources = self.sources.lock().expect("guard lock");
        let mut bans: Vec<Ban> = sources
            .iter()
            .filter_map(|((side, source), entry)| {
                entry.banned(now).map(|left| Ban {
                    side: side.name().to_string(),
                    source: source.to_string(),
                    remainingseconds: left.as_secs().max(1),
                    failures: entry.failures,
                })
            })
            .collect();
        bans.sort_by(|a, b| (&a.side, &a.source).cmp(&(&b.side, &b.source)));
        bans
    }

    /// How many sources are banned now on each side.
    pub fn bans_active(&self, now: Instant) -> Vec<(&'static str, u64)> {
        let bans = self.bans(now);
        [Side::Api, Side::P2p]
            .into_iter()
            .map(|side| {
                let count = bans.iter().filter(|b| b.side == side.name()).count();
                (side.name(), count as u64)
            })
            .collect()
    }

    /// Lifts the bans of `source` on both sides (and forgets its failures). Returns how many
    /// bans were lifted.
    pub fn lift(&self, source: IpAddr, now: Instant) -> usize {
        let mut sources = self.sources.lock().expect("guard lock");
        let mut lifted = 0;
        for side in [Side::Api, Side::P2p] {
            if let Some(entry) = sources.get_mut(&(side, source)) {
                if entry.banned(now).is_some() {
                    lifted += 1;
                }
                entry.banned_until = None;
                entry.failures = 0;
                entry.window_start = now;
            }
        }
        if lifted > 0 {
            tracing::info!(%source, "ban lifted by the operator");
        }
        lifted
    }
}

/// The entry for `(side, source)`, created if there is room (forgetting idle sources when
/// the table is full). `None` when the table is full of active sources: the request is then
/// not limited rather than refused.
fn tracked(
    sources: &mut HashMap<(Side, IpAddr), Source>,
    side: Side,
    source: IpAddr,
    now: Instant,
    burst: f64,
    per_second: u32,
) -> Option<&mut Source> {
    bounded_entry(
        sources,
        (side, source),
        SOURCES_MAX,
        |s| s.banned(now).is_some() || s.failures > 0 || !s.anonymous.idle(now, per_second, burst),
        || Source::new(now, burst),
    )
}

/// The entry for `key` in a table of at most `max` entries, made by `fresh` if it is new.
/// When the table is full, entries that `active` does not keep are forgotten first; `None`
/// when it stays full of active ones.
fn bounded_entry<K: std::hash::Hash + Eq, V>(
    table: &mut HashMap<K, V>,
    key: K,
    max: usize,
    active: impl Fn(&V) -> bool,
    fresh: impl FnOnce() -> V,
) -> Option<&mut V> {
    if !table.contains_key(&key) && table.len() >= max {
        table.retain(|_, entry| active(entry));
        if table.len() >= max {
            return None;
        }
    }
    Some(table.entry(key).or_insert_with(fresh))
}

/// Parses `a.b.c.d/n`, `x::y/n` or a bare address (a network of one).
pub fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address or network (a.b.c.d/n)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(bits) => bits
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{text:?} has an invalid prefix length (0..={max})"))?,
    };
    Ok((addr, bits))
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    // An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) counts as IPv4.
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(adjust: impl FnOnce(&mut GuardConfig)) -> Arc<Guard> {
        let mut config = GuardConfig {
            exempt: vec![],
            ..GuardConfig::default()
        };
        adjust(&mut config);
        Arc::new(Guard::new(config, Arc::new(Metrics::new())))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn repeated_failures_within_the_window_ban_until_the_ban_ends() {
        let g = guard(|c| {
            c.auth_failures_max = 3;
            c.auth_failure_window_seconds = 10;
            c.ban_seconds = 60;
        });
        let (t0, bad, good) = (crate::clock::monotonic(), ip("10.0.0.9"), ip("10.0.0.10"));
        assert!(!g.failed(Side::Api, bad, t0));
        assert!(!g.failed(Side::Api, bad, t0 + Duration::from_secs(1)));
        assert!(g.admit(Side::Api, bad, t0 + Duration::from_secs(2)).is_ok());
        assert!(
            g.failed(Side::Api, bad, t0 + Duration::from_secs(2)),
            "third failure bans"
        );
        let refused = g
            .admit(Side::Api, bad, t0 + Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal::Banned {
                addr: bad,
                remaining_seconds: 59
            }
        );
        assert!(
            refused.to_string().contains("10.0.0.9 is banned"),
            "{refused}"
        );
        assert!(
            g.admit(Side::Api, good, t0).is_ok(),
            "other sources are not affected"
        );
        assert!(g.admit(Side::P2p, bad, t0).is_ok(), "sides are separate");
        let bans = g.bans(t0 + Duration::from_secs(3));
        assert_eq!(bans.len(), 1);
        assert_eq!((bans[0].side.as_str(), bans[0].failures), ("api", 3));
        assert_eq!(g.bans_active(t0 + Duration::from_secs(3))[0], ("api", 1));
        assert!(
            g.admit(Side::Api, bad, t0 + Duration::from_secs(63))
                .is_ok(),
            "ban over"
        );
        assert!(g.bans(t0 + Duration::from_secs(63)).is_empty());
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_ban() {
        let g = guard(|c| {
            c.auth_failures_max = 2;
            c.auth_failure_window_seconds = 10;
        });
        let (t0, source) = (crate::clock::monotonic(), ip("192.0.2.1"));
        assert!(!g.failed(Side::Api, source, t0));
        assert!(!g.failed(Side::Api, source, t0 + Duration::from_secs(11)));
        assert!(g.failed(Side::Api, source, t0 + Duration::from_secs(12)));
    }

    #[test]
    fn the_operator_lifts_a_ban() {
        let g = guard(|c| c.auth_failures_max = 1);
        let (t0, source) = (crate::clock::monotonic(), ip("2001:db8::7"));
        assert!(g.failed(Side::P2p, source, t0));
        assert!(g.admit(Side::P2p, source, t0).is_err());
        assert_eq!(g.lift(source, t0), 1);
        assert!(g.admit(Side::P2p, source, t0).is_ok());
        assert_eq!(g.lift(source, t0), 0, "nothing left to lift");
    }

    #[test]
    fn the_rate_is_per_identity_and_refills_over_time_up_to_the_burst() {
        let g = guard(|c| {
            c.requests_per_second = 10;
            c.request_burst = 20;
        });
        let (t0, source) = (crate::clock::monotonic(), ip("10.1.1.1"));
        for _ in 0..20 {
            g.identity(source, "a", t0).unwrap();
        }
        let refused = g.identity(source, "a", t0).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Rate {
                id: "a".into(),
                per_second: 10
            }
        );
        assert_eq!(refused.retry_after_seconds(), Some(1));
        // Another identity behind the same address has its own rate; the address is not
        // refused.
        g.identity(source, "b", t0).unwrap();
        g.admit(Side::Api, source, t0).unwrap();
        // 0.5 s later: 5 more tokens.
        let later = t0 + Duration::from_millis(500);
        for _ in 0..5 {
            g.identity(source, "a", later).unwrap();
        }
        assert!(g.identity(source, "a", later).is_err());
        // Long idle: back to the burst, not more.
        let idle = t0 + Duration::from_secs(3600);
        for _ in 0..20 {
            g.identity(source, "a", idle).unwrap();
        }
        assert!(g.identity(source, "a", idle).is_err());
    }

    #[test]
    fn a_thousand_identities_behind_one_address_are_not_limited() {
        let g = guard(|_| {});
        let (t0, site) = (crate::clock::monotonic(), ip("198.51.100.7"));
        let mut polls = Vec::new();
        for i in 0..1000 {
            let id = format!("executor-{i}");
            for _ in 0..10 {
                g.identity(site, &id, t0).unwrap();
            }
            polls.push(g.long_poll(site, &id, t0).unwrap());
        }
        g.admit(Side::Api, site, t0).unwrap();
    }

    #[test]
    fn anonymous_and_failing_requests_spend_the_source_budget() {
        let g = guard(|c| {
            c.anonymous_per_second = 2;
            c.anonymous_burst = 4;
            c.auth_failures_max = 0;
        });
        let (t0, source) = (crate::clock::monotonic(), ip("203.0.113.5"));
        g.anonymous(Side::Api, source, t0).unwrap();
        g.rejected(Side::Api, source, t0);
        g.failed(Side::Api, source, t0);
        g.admit(Side::Api, source, t0).unwrap();
        g.anonymous(Side::Api, source, t0).unwrap();
        // Spent: the source is refused up front, before its request is read.
        let refused = g.admit(Side::Api, source, t0).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Anonymous {
                addr: source,
                per_second: 2
            }
        );
        assert!(refused.to_string().contains("203.0.113.5"), "{refused}");
        assert!(g.anonymous(Side::Api, source, t0).is_err());
        assert!(
            g.admit(Side::Api, ip("203.0.113.6"), t0).is_ok(),
            "per source"
        );
        // Half a second refills one.
        let later = t0 + Duration::from_millis(500);
        g.admit(Side::Api, source, later).unwrap();
        g.anonymous(Side::Api, source, later).unwrap();
        assert!(g.admit(Side::Api, source, later).is_err());
    }

    #[test]
    fn long_polls_are_capped_per_identity_and_freed_on_drop() {
        let g = guard(|c| c.long_polls_per_identity = 2);
        let (t0, source) = (crate::clock::monotonic(), ip("10.2.2.2"));
        let first = g.long_poll(source, "a", t0).unwrap();
        let _second = g.long_poll(source, "a", t0).unwrap();
        let refused = g.long_poll(source, "a", t0).err().unwrap();
        assert_eq!(
            refused,
            Refusal::LongPolls {
                id: "a".into(),
                max: 2
            }
        );
        assert!(g.long_poll(source, "b", t0).is_ok(), "same address");
        drop(first);
        assert!(g.long_poll(source, "a", t0).is_ok());
    }

    #[test]
    fn exempt_networks_skip_every_rule() {
        let g = guard(|c| {
            c.exempt = vec!["127.0.0.0/8".into(), "::1".into()];
            c.auth_failures_max = 1;
            c.requests_per_second = 1;
            c.request_burst = 1;
            c.anonymous_per_second = 1;
            c.anonymous_burst = 1;
            c.long_polls_per_identity = 1;
        });
        let t0 = crate::clock::monotonic();
        for source in [
            ip("127.0.0.1"),
            ip("127.9.9.9"),
            ip("::1"),
            ip("::ffff:127.0.0.1"),
        ] {
            assert!(!g.failed(Side::Api, source, t0));
            for _ in 0..5 {
                g.rejected(Side::Api, source, t0);
                g.anonymous(Side::Api, source, t0).unwrap();
                g.identity(source, "a", t0).unwrap();
                g.admit(Side::Api, source, t0).unwrap();
            }
            let _a = g.long_poll(source, "a", t0).unwrap();
            let _b = g.long_poll(source, "a", t0).unwrap();
        }
        assert!(
            g.failed(Side::Api, ip("128.0.0.1"), t0),
            "outside the network"
        );
    }

    #[test]
    fn networks_parse_or_name_the_mistake() {
        assert_eq!(parse_network("10.0.0.0/8").unwrap(), (ip("10.0.0.0"), 8));
        assert_eq!(parse_network("::1").unwrap(), (ip("::1"), 128));
        assert!(parse_network("10.0.0.0/33")
            .unwrap_err()
            .contains("prefix length"));
        assert!(parse_network("ten/8")
            .unwrap_err()
            .contains("not an IP address"));
        assert!(in_network(ip("10.200.3.4"), ip("10.0.0.0"), 8));
        assert!(!in_network(ip("11.0.0.1"), ip("10.0.0.0"), 8));
        assert!(
            in_network(ip("1.2.3.4"), ip("0.0.0.0"), 0),
            "/0 holds everything"
        );
    }
}
