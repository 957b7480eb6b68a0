//! Per-source protection for the API and the mesh: a source address with repeated failed
//! authentications within a window is banned for a while; every source has a request rate
//! (token bucket) and a cap on concurrent long-polls. Keyed by IP address (peer ids and keys
//! cost an attacker nothing to change). Exempt networks (loopback by default: the node's own
//! executors and tools) skip all of it.
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
    #[error("source {addr} exceeds {per_second} requests per second")]
    Rate { addr: IpAddr, per_second: u32 },
    #[error("source {addr} already has {max} long-polls waiting")]
    LongPolls { addr: IpAddr, max: usize },
}

/// What is kept about one source on one side.
struct Source {
    /// Failed authentications within the current window, and when the window began.
    failures: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
    /// Request tokens left, refilled at `requests_per_second` up to `request_burst`.
    tokens: f64,
    refilled: Instant,
    long_polls: usize,
}

impl Source {
    fn new(now: Instant, burst: f64) -> Source {
        Source {
            failures: 0,
            window_start: now,
            banned_until: None,
            tokens: burst,
            refilled: now,
            long_polls: 0,
        }
    }

    fn banned(&self, now: Instant) -> Option<Duration> {
        self.banned_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }
}

/// The per-source rules; shared by the API and the mesh service.
pub struct Guard {
    config: GuardConfig,
    exempt: Vec<(IpAddr, u8)>,
    /// Request tokens a source's bucket holds at most.
    burst: f64,
    sources: Mutex<HashMap<(Side, IpAddr), Source>>,
    metrics: Arc<Metrics>,
}

/// Sources tracked at once; when full, idle ones are forgotten first.
const SOURCES_MAX: usize = 65_536;

/// A long-poll slot; dropping it frees the slot.
pub struct LongPoll {
    guard: Option<(Arc<Guard>, Side, IpAddr)>,
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        if let Some((guard, side, source)) = self.guard.take() {
            let mut sources = guard.sources.lock().expect("guard lock");
            if let Some(entry) = sources.get_mut(&(side, source)) {
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
        // The bucket never holds less than one second of the rate.
        let burst = f64::from(config.request_burst.max(config.requests_per_second));
        Guard {
            burst,
            config,
            exempt,
            sources: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn is_exempt(&self, source: IpAddr) -> bool {
        self.exempt
            .iter()
            .any(|(net, bits)| in_network(source, *net, *bits))
    }

    /// Admits one request from `source`, or says why not (banned, over its rate).
    pub fn admit(&self, side: Side, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        if self.is_exempt(source) {
            return Ok(());
        }
        let mut sources = self.sources.lock().expect("guard lock");
        let Some(entry) = tracked(&mut sources, side, source, now, self.burst) else {
            return Ok(());
        };
        if let Some(left) = entry.banned(now) {
            return Err(Refusal::Banned {
                addr: source,
                remaining_seconds: left.as_secs().max(1),
            });
        }
        let per_second = self.config.requests_per_second;
        if per_second == 0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(entry.refilled).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * f64::from(per_second)).min(self.burst);
        entry.refilled = now;
        if entry.tokens < 1.0 {
            drop(sources);
            self.metrics.rate_limited("rate");
            return Err(Refusal::Rate {
                addr: source,
                per_second,
            });
        }
        entry.tokens -= 1.0;
        Ok(())
    }

    /// Refuses a banned source; unlike `admit`, no rate applies (mesh traffic between members
    /// is heavy by nature).
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

    /// A failed authentication from `source`; bans it when it reaches the limit within the
    /// window. Returns true when this failure banned it.
    pub fn failed(&self, side: Side, source: IpAddr, now: Instant) -> bool {
        if self.is_exempt(source) {
            return false;
        }
        self.metrics.auth_failed(side.name());
        let mut sources = self.sources.lock().expect("guard lock");
        let Some(entry) = tracked(&mut sources, side, source, now, self.burst) else {
            return false;
        };
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

    /// Takes a long-poll slot for `source`, or refuses when it has its maximum waiting.
    pub fn long_poll(
        self: &Arc<Self>,
        side: Side,
        source: IpAddr,
        now: Instant,
    ) -> Result<LongPoll, Refusal> {
        let max = self.config.long_polls_per_source;
        if self.is_exempt(source) || max == 0 {
            return Ok(LongPoll { guard: None });
        }
        let mut sources = self.sources.lock().expect("guard lock");
        let Some(entry) = tracked(&mut sources, side, source, now, self.burst) else {
            return Ok(LongPoll { guard: None });
        };
        if entry.long_polls >= max {
            drop(sources);
            self.metrics.rate_limited("long_polls");
            return Err(Refusal::LongPolls { addr: source, max });
        }
        entry.long_polls += 1;
        Ok(LongPoll {
            guard: Some((self.clone(), side, source)),
        })
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
) -> Option<&mut Source> {
    if !sources.contains_key(&(side, source)) && sources.len() >= SOURCES_MAX {
        sources.retain(|_, s| s.banned(now).is_some() || s.long_polls > 0 || s.failures > 0);
        if sources.len() >= SOURCES_MAX {
            return None;
        }
    }
    Some(
        sources
            .entry((side, source))
            .or_insert_with(|| Source::new(now, burst)),
    )
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
    fn the_rate_refills_over_time_up_to_the_burst() {
        let g = guard(|c| {
            c.requests_per_second = 10;
            c.request_burst = 20;
        });
        let (t0, source) = (crate::clock::monotonic(), ip("10.1.1.1"));
        for _ in 0..20 {
            g.admit(Side::Api, source, t0).unwrap();
        }
        let refused = g.admit(Side::Api, source, t0).unwrap_err();
        assert!(matches!(refused, Refusal::Rate { per_second: 10, .. }));
        // 0.5 s later: 5 more tokens.
        let later = t0 + Duration::from_millis(500);
        for _ in 0..5 {
            g.admit(Side::Api, source, later).unwrap();
        }
        assert!(g.admit(Side::Api, source, later).is_err());
        // Long idle: back to the burst, not more.
        let idle = t0 + Duration::from_secs(3600);
        for _ in 0..20 {
            g.admit(Side::Api, source, idle).unwrap();
        }
        assert!(g.admit(Side::Api, source, idle).is_err());
    }

    #[test]
    fn long_polls_are_capped_per_source_and_freed_on_drop() {
        let g = guard(|c| c.long_polls_per_source = 2);
        let (t0, source) = (crate::clock::monotonic(), ip("10.2.2.2"));
        let first = g.long_poll(Side::Api, source, t0).unwrap();
        let _second = g.long_poll(Side::Api, source, t0).unwrap();
        let refused = g.long_poll(Side::Api, source, t0).err().unwrap();
        assert_eq!(
            refused,
            Refusal::LongPolls {
                addr: source,
                max: 2
            }
        );
        assert!(g.long_poll(Side::Api, ip("10.2.2.3"), t0).is_ok());
        drop(first);
        assert!(g.long_poll(Side::Api, source, t0).is_ok());
    }

    #[test]
    fn exempt_networks_skip_every_rule() {
        let g = guard(|c| {
            c.exempt = vec!["127.0.0.0/8".into(), "::1".into()];
            c.auth_failures_max = 1;
            c.requests_per_second = 1;
            c.request_burst = 1;
            c.long_polls_per_source = 1;
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
                g.admit(Side::Api, source, t0).unwrap();
            }
            let _a = g.long_poll(Side::Api, source, t0).unwrap();
            let _b = g.long_poll(Side::Api, source, t0).unwrap();
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
