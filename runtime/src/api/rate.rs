//! Rate limits, the access log and the audit log of authentication failures.
//!
//! Three limits, each a token bucket (GCRA, the `governor` crate) answering `429` with
//! `Retry-After` when spent:
//! - per peer address (an IPv6 peer counts by its /64, which one host usually holds
//!   whole): every request of the API and the UI;
//! - per workspace: every API request made with one of its keys, and its webhooks;
//! - failed authentications per peer (a bad or revoked key, a bad admin token, a bad
//!   webhook signature, a webhook token that names nothing, a refused sign-in): a peer
//!   past its budget is refused outright, before any key is hashed or looked up, until
//!   its budget has grown back, so a burst of guesses costs the server almost nothing
//!   and other tenants do not notice it.
//!
//! Every request is written to the access log (target `weir::access`: peer, method,
//! route pattern rather than the path, so that webhook tokens stay out of the log,
//! status, time) and every authentication failure to the audit log (target
//! `weir::audit`, one line per failure and one when a peer is blocked). The binary
//! writes logs from a background thread, so logging never waits for the terminal.

use super::{ApiError, AppState};
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How fast requests may come; `0` turns a limit off.
#[derive(Debug, Clone)]
pub struct RateConfig {
    /// Requests per second from one peer address (a burst of twice as many is let in).
    pub per_peer: u32,
    /// API requests per second with the keys of one workspace, its webhooks included.
    pub per_workspace: u32,
    /// Failed authentications per minute from one peer address, after a first burst of
    /// `auth_failure_burst`.
    pub auth_failures_per_minute: u32,
    pub auth_failure_burst: u32,
}

impl RateConfig {
    /// No limit of any kind (a bench's load generator on the same machine).
    pub fn unlimited() -> Self {
        Self {
            per_peer: 0,
            per_workspace: 0,
            auth_failures_per_minute: 0,
            auth_failure_burst: 0,
        }
    }
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            per_peer: 2000,
            per_workspace: 2000,
            auth_failures_per_minute: 60,
            auth_failure_burst: 60,
        }
    }
}

/// What a response carries when it answered a failed authentication.
#[derive(Debug, Clone)]
pub struct AuthFailure(pub String);

/// Where requests come from, for the limits: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(IpAddr);

impl Peer {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Peer(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Peer(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
            v4 => Peer(v4),
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

/// The server's rate limiters.
pub struct RateLimits {
    per_peer: Option<DefaultKeyedRateLimiter<Peer>>,
    per_workspace: Option<DefaultKeyedRateLimiter<String>>,
    failures: Option<DefaultKeyedRateLimiter<Peer>>,
    /// Peers refused until a time, after too many failed authentications.
    blocked: Mutex<HashMap<Peer, Instant>>,
    clock: DefaultClock,
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits {
    pub fn new(config: &RateConfig) -> Self {
        let failures = NonZeroU32::new(config.auth_failures_per_minute).map(|n| {
            let burst = NonZeroU32::new(config.auth_failure_burst).unwrap_or(n);
            Quota::per_minute(n).allow_burst(burst)
        });
        Self {
            per_peer: quota(config.per_peer, config.per_peer.saturating_mul(2))
                .map(DefaultKeyedRateLimiter::keyed),
            per_workspace: quota(config.per_workspace, config.per_workspace.saturating_mul(2))
                .map(DefaultKeyedRateLimiter::keyed),
            failures: failures.map(DefaultKeyedRateLimiter::keyed),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// Counts an API request of a workspace; `429` when it is over its rate.
    pub fn workspace(&self, workspace_id: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_workspace else {
            return Ok(());
        };
        limiter
            .check_key(&workspace_id.to_owned())
            .map_err(|not_until| {
                too_many(
                    not_until.wait_time_from(self.clock.now()),
                    "this workspace is sending requests faster than the server's limit",
                )
            })
    }

    /// Whether connections from `ip` are refused for now (too many failed
    /// authentications): the accept loop closes them before reading a byte.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        self.blocked_until(Peer::of(ip)).is_some()
    }

    /// When a blocked peer may come back, if it is blocked.
    fn blocked_until(&self, peer: Peer) -> Option<Instant> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&peer) {
            Some(until) if *until > Instant::now() => Some(*until),
            Some(_) => {
                blocked.remove(&peer);
                None
            }
            None => None,
        }
    }

    /// Records a failed authentication; blocks the peer when it is over its budget.
    fn failed(&self, peer: Peer, route: &str, why: &str) {
        tracing::warn!(target: "weir::audit", %peer, route, "authentication failed: {why}");
        let Some(limiter) = &self.failures else {
            return;
        };
        if let Err(not_until) = limiter.check_key(&peer) {
            let wait = not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_secs(1));
            self.blocked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(peer, Instant::now() + wait);
            tracing::warn!(
                target: "weir::audit",
                %peer,
                "too many failed authentications: requests from {peer} are refused for {} s",
                wait.as_secs_f64().ceil()
            );
        }
    }

    /// Forgets peers and workspaces that have been quiet long enough to be back to a
    /// full budget, so that the limiters' memory follows the active clients.
    pub fn forget_idle(&self) {
        for l in [&self.per_peer, &self.failures].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_workspace {
            l.retain_recent();
            l.shrink_to_fit();
        }
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

fn too_many(wait: Duration, detail: &str) -> ApiError {
    ApiError::TooManyRequests {
        detail: detail.to_owned(),
        retry_after: wait,
    }
}

/// The middleware of every route: the peer's limits before the request, the access
/// log and failed authentications after it.
pub async fn guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| Peer::of(c.0.ip()));
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |m| m.as_str().to_owned());
    let limits = &state.rate;
    let refused = match peer {
        Some(p) => match limits.blocked_until(p) {
            Some(until) => Some(too_many(
                until.saturating_duration_since(Instant::now()),
                "too many failed authentications from this address",
            )),
            None => limits.per_peer.as_ref().and_then(|l| {
                l.check_key(&p).err().map(|not_until| {
                    too_many(
                        not_until.wait_time_from(limits.clock.now()),
                        "this address is sending requests faster than the server's limit",
                    )
                })
            }),
        },
        None => None,
    };
    let res = match refused {
        Some(e) => {
            let mut res = e.into_response();
            if peer.is_some_and(|p| limits.blocked_until(p).is_some()) {
                // A blocked address's connection is closed after this answer; its new
                // ones are closed as they are accepted.
                res.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            res
        }
        None => next.run(req).await,
    };
    if let (Some(p), Some(AuthFailure(why))) = (peer, res.extensions().get::<AuthFailure>()) {
        limits.failed(p, &route, why);
    }
    if tracing::enabled!(target: "weir::access", tracing::Level::INFO) {
        let peer = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
        tracing::info!(
            target: "weir::access",
            "{peer} {method} {route} {} {:.1}ms",
            res.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_peer_counts_by_its_64() {
        let a = Peer::of("2001:db8:1:2:3:4:5:6".parse().unwrap());
        let b = Peer::of("2001:db8:1:2:ffff::1".parse().unwrap());
        let c = Peer::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            Peer::of("::ffff:10.0.0.1".parse().unwrap()),
            Peer::of("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn a_peer_past_its_failure_budget_is_blocked_then_let_back() {
        let limits = RateLimits::new(&RateConfig {
            auth_failures_per_minute: 60,
            auth_failure_burst: 3,
            ..RateConfig::default()
        });
        let p = Peer::of("192.0.2.7".parse().unwrap());
        let other = Peer::of("192.0.2.8".parse().unwrap());
        for _ in 0..3 {
            limits.failed(p, "/api/flow-runs", "bad key");
        }
        assert!(limits.blocked_until(p).is_none(), "the burst is allowed");
        limits.failed(p, "/api/flow-runs", "bad key");
        let until = limits.blocked_until(p).expect("blocked past the burst");
        assert!(until > Instant::now() && until <= Instant::now() + Duration::from_secs(2));
        assert!(limits.blocked_until(other).is_none());
    }

    #[test]
    fn a_workspace_over_its_rate_gets_429_with_a_wait() {
        let limits = RateLimits::new(&RateConfig {
            per_workspace: 5,
            ..RateConfig::default()
        });
        let mut refused = None;
        for _ in 0..20 {
            if let Err(e) = limits.workspace("ws") {
                refused = Some(e);
                break;
            }
        }
        match refused {
            Some(ApiError::TooManyRequests { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}")
            }
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(limits.workspace("another").is_ok());
        let off = RateLimits::new(&RateConfig {
            per_workspace: 0,
            ..RateConfig::default()
        });
        assert!((0..10_000).all(|_| off.workspace("ws").is_ok()));
    }
}
