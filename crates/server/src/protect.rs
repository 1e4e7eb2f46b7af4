//! Protection shared by every HTTP face: per-client rate limits (sign-in attempts per
//! IP, writes per API key or IP) answered with `429` and `Retry-After`, and the
//! security headers every response carries (CSP without inline script or style,
//! framing denied, HSTS when renkei itself terminates TLS).
//!
//! The limiter is a GCRA ("generic cell rate algorithm") token bucket: each key keeps
//! only the instant at which its bucket would be full again, so the arithmetic is exact
//! integer durations and a key costs one map entry.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many keys one limiter remembers by default; beyond it, idle keys are forgotten
/// first, then the least recently seen.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The problem type of a refusal for too many requests.
pub const TOO_MANY_REQUESTS_TYPE: &str = "urn:renkei:problem:TooManyRequests";

/// Keyed token buckets of `burst` tokens refilled at one token per `interval`.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time to earn back one token.
    interval: Duration,
    /// `interval × burst`: how far ahead of now a key's "full again" instant may be.
    tolerance: Duration,
    max_keys: usize,
    /// Per key, the instant at which its bucket is full again (GCRA's theoretical
    /// arrival time). An instant not after now means a full bucket.
    full_at: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// A limiter allowing bursts of `burst` requests, refilled at `per_second` tokens a
    /// second. Zero values are raised to one.
    pub fn per_second(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(Duration::from_secs(1) / per_second.max(1), burst)
    }

    /// A limiter allowing bursts of `burst` requests, refilled at `per_minute` tokens a
    /// minute. Zero values are raised to one.
    pub fn per_minute(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(Duration::from_secs(60) / per_minute.max(1), burst)
    }

    /// A limiter earning one token per `interval`, holding at most `burst` tokens.
    pub fn new(interval: Duration, burst: u32) -> RateLimiter {
        let interval = interval.max(Duration::from_nanos(1));
        RateLimiter {
            interval,
            tolerance: interval * burst.max(1),
            max_keys: DEFAULT_MAX_KEYS,
            full_at: Mutex::new(HashMap::new()),
        }
    }

    /// The same limiter remembering at most `max_keys` keys (at least one).
    pub fn with_max_keys(mut self, max_keys: usize) -> RateLimiter {
        self.max_keys = max_keys.max(1);
        self
    }

    /// Takes a token for `key` now; `Err` says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Takes a token for `key` at `now` (an injected clock, for tests and callers that
    /// already read the time); `Err` says how long until one is available.
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.lock();
        let full_at = match buckets.get(key) {
            Some(&full_at) => full_at.max(now),
            None => {
                if buckets.len() >= self.max_keys {
                    self.make_room(&mut buckets, now);
                }
                now
            }
        };
        let next_full_at = full_at + self.interval;
        let ahead = next_full_at.saturating_duration_since(now);
        if ahead > self.tolerance {
            // Refused: nothing is recorded, so a refused request costs no token.
            return Err(ahead - self.tolerance);
        }
        match buckets.get_mut(key) {
            Some(entry) => *entry = next_full_at,
            None => {
                buckets.insert(key.to_owned(), next_full_at);
            }
        }
        Ok(())
    }

    /// How many keys the limiter remembers now.
    pub fn tracked_keys(&self) -> usize {
        self.lock().len()
    }

    /// Forgets keys whose bucket is full at `now` (they behave exactly like unknown
    /// keys); if the map is still at its bound, forgets the least recently used tenth,
    /// which hands those keys a fresh burst but keeps memory bounded against a client
    /// rotating through addresses or keys.
    fn make_room(&self, buckets: &mut HashMap<String, Instant>, now: Instant) {
        buckets.retain(|_, full_at| *full_at > now);
        if buckets.len() < self.max_keys {
            return;
        }
        let excess = buckets.len() + 1 - self.max_keys;
        let evict = excess.max(self.max_keys / 10).min(buckets.len());
        let mut by_age: Vec<Instant> = buckets.values().copied().collect();
        let (_, &mut cutoff, _) = by_age.select_nth_unstable(evict - 1);
        let mut evicted = 0;
        buckets.retain(|_, full_at| {
            if evicted < evict && *full_at <= cutoff {
                evicted += 1;
                false
            } else {
                true
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding the lock cannot leave the map inconsistent (every
        // update is a single insert), so a poisoned lock is still usable.
        self.full_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The rate-limit settings of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sign-in attempts (`POST /auth/login…`, `POST /auth/oidc…`) per client IP per
    /// minute; also the burst.
    pub sign_in_per_minute: u32,
    /// Writes (any method but GET, HEAD and OPTIONS) per API key, or per IP without
    /// one, per second; 0 turns the write limit off (benchmarks, bulk loads behind
    /// a limiting proxy).
    pub writes_per_second: u32,
    /// How many writes a key may make at once before the per-second rate applies.
    pub writes_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            sign_in_per_minute: 10,
            writes_per_second: 200,
            writes_burst: 400,
        }
    }
}

/// How many keys' worth of writes one address may send in all.
pub const KEYS_PER_ADDRESS: u32 = 4;

/// Where the middleware reads the time: the system clock, or a test's.
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The limiters the [`limit_rate`] middleware applies.
pub struct RateLimits {
    /// Sign-in attempts, keyed by client IP.
    pub sign_in: RateLimiter,
    /// Writes, keyed by a hash of the API key, or by client IP without one.
    pub writes: RateLimiter,
    /// Writes of every key from one address together, at [`KEYS_PER_ADDRESS`] times
    /// the budget of one key: a client inventing a new key for each request (each a
    /// fresh bucket, refused later by authentication) is still held back.
    pub writes_per_address: RateLimiter,
    writes_limited: bool,
    clock: Clock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("sign_in", &self.sign_in)
            .field("writes", &self.writes)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(RateLimitConfig::default())
    }
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> RateLimits {
        RateLimits::with_clock(config, Instant::now)
    }

    /// Limits reading the time from `clock` instead of the system clock, so tests of
    /// the middleware decide when time passes.
    pub fn with_clock(
        config: RateLimitConfig,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> RateLimits {
        RateLimits {
            sign_in: RateLimiter::per_minute(config.sign_in_per_minute, config.sign_in_per_minute),
            writes: RateLimiter::per_second(config.writes_per_second, config.writes_burst),
            writes_per_address: RateLimiter::per_second(
                config.writes_per_second.saturating_mul(KEYS_PER_ADDRESS),
                config.writes_burst.saturating_mul(KEYS_PER_ADDRESS),
            ),
            writes_limited: config.writes_per_second > 0,
            clock: Arc::new(clock),
        }
    }

    /// Which limiters apply to a request, and under which keys; none for reads.
    fn classify(&self, request: &Request) -> Vec<(&RateLimiter, String)> {
        let method = request.method();
        let path = request.uri().path();
        let address = format!("ip:{}", client_ip(request));
        if *method == Method::POST
            && (path.starts_with("/auth/login") || path.starts_with("/auth/oidc"))
        {
            return vec![(&self.sign_in, address)];
        }
        if !self.writes_limited || matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Vec::new();
        }
        match api_key_fingerprint(request.headers()) {
            Some(fingerprint) => vec![
                (&self.writes, format!("key:{fingerprint}")),
                (&self.writes_per_address, address),
            ],
            None => vec![(&self.writes, address)],
        }
    }
}

/// The client address as the connection reports it, or `local` when the request did
/// not come over a socket (in-process tests).
///
/// `X-Forwarded-For` is deliberately not read: any client can send it, so trusting it
/// would let every request pick its own bucket. Behind a reverse proxy every request
/// shares the proxy's address here; such a deployment must rate-limit at the proxy
/// (trusting a configured proxy's header is future work).
fn client_ip(request: &Request) -> String {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(address)) => address.ip().to_string(),
        None => "local".to_owned(),
    }
}

/// A SHA-256 prefix (128 bits, hex) of the credential a request presents, so the
/// limiter's map never holds a secret.
fn api_key_fingerprint(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("x-ckan-api-key"))?;
    let digest = Sha256::digest(value.as_bytes());
    Some(
        digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    )
}

/// Whole seconds to announce in `Retry-After`: rounded up, at least one.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// The `429` answer: `Retry-After` and a problem document in English and Japanese.
pub fn too_many_requests(wait: Duration) -> Response {
    let seconds = retry_after_seconds(wait);
    let body = json!({
        "type": TOO_MANY_REQUESTS_TYPE,
        "title": "Too Many Requests",
        "status": StatusCode::TOO_MANY_REQUESTS.as_u16(),
        "detail": format!("Too many requests; retry after {seconds} seconds."),
        "detail_ja": format!("リクエストが多すぎます。{seconds}秒後に再試行してください。"),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Middleware applying [`RateLimits`]: `POST /auth/login…` and `POST /auth/oidc…` count
/// against the client IP's sign-in budget; every other request but GET, HEAD and
/// OPTIONS counts against the writes budget of its API key (`Authorization` or
/// `X-CKAN-API-Key`), or of its IP without one. Reads are never limited here.
pub async fn limit_rate(
    State(limits): State<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    for (limiter, key) in limits.classify(&request) {
        if let Err(wait) = limiter.check_at(&key, (limits.clock)()) {
            tracing::debug!(
                method = %request.method(),
                path = request.uri().path(),
                retry_after_s = retry_after_seconds(wait),
                "rate limited"
            );
            return too_many_requests(wait);
        }
    }
    next.run(request).await
}

/// The Content-Security-Policy of every page renkei serves: its own scripts, styles,
/// fonts and connections only, no inline code, no plugins, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// HSTS for a year, subdomains included; only sent over TLS renkei terminates.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// The headers every response carries, as (name, value).
pub fn security_header_values(tls: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("geolocation=(self), camera=(), microphone=()"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
    ];
    if tls {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        ));
    }
    headers
}

/// Middleware adding the security headers to every response; `tls` says whether renkei
/// terminates TLS itself (then HSTS is sent too). A header the handler already set is
/// kept, so a page may tighten its own policy.
pub async fn security_headers(State(tls): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in security_header_values(tls) {
        headers.entry(name).or_insert(value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_is_served_then_refused_with_the_time_to_the_next_token() {
        let limiter = RateLimiter::per_minute(10, 10);
        let t0 = Instant::now();
        for attempt in 0..10 {
            assert_eq!(limiter.check_at("ip:1", t0), Ok(()), "attempt {attempt}");
        }
        assert_eq!(limiter.check_at("ip:1", t0), Err(6 * SECOND));
        // Refusals cost nothing: the wait only shrinks as time passes.
        assert_eq!(limiter.check_at("ip:1", t0 + 2 * SECOND), Err(4 * SECOND));
        assert_eq!(limiter.check_at("ip:1", t0 + 6 * SECOND), Ok(()));
        assert_eq!(limiter.check_at("ip:1", t0 + 6 * SECOND), Err(6 * SECOND));
    }

    #[test]
    fn tokens_refill_at_the_rate_up_to_the_burst_only() {
        let limiter = RateLimiter::per_second(2, 4);
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.check_at("k", t0).unwrap();
        }
        assert!(limiter.check_at("k", t0).is_err());
        // One second earns two tokens at 2/s.
        let t1 = t0 + SECOND;
        assert_eq!(limiter.check_at("k", t1), Ok(()));
        assert_eq!(limiter.check_at("k", t1), Ok(()));
        assert_eq!(limiter.check_at("k", t1), Err(SECOND / 2));
        // A long idle time refills to the burst, not beyond.
        let t2 = t1 + 3600 * SECOND;
        for _ in 0..4 {
            assert_eq!(limiter.check_at("k", t2), Ok(()));
        }
        assert!(limiter.check_at("k", t2).is_err());
    }

    #[test]
    fn keys_have_independent_buckets() {
        let limiter = RateLimiter::per_minute(1, 1);
        let t0 = Instant::now();
        assert_eq!(limiter.check_at("a", t0), Ok(()));
        assert!(limiter.check_at("a", t0).is_err());
        assert_eq!(limiter.check_at("b", t0), Ok(()));
    }

    #[test]
    fn idle_full_buckets_are_forgotten_when_the_map_is_full() {
        let limiter = RateLimiter::per_second(1, 1).with_max_keys(3);
        let t0 = Instant::now();
        for key in ["a", "b", "c"] {
            limiter.check_at(key, t0).unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 3);
        // Two seconds later every bucket is full again, so all three are dropped.
        limiter.check_at("d", t0 + 2 * SECOND).unwrap();
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[test]
    fn the_map_never_outgrows_its_bound_even_when_no_bucket_is_idle() {
        let limiter = RateLimiter::per_minute(1, 1).with_max_keys(20);
        let t0 = Instant::now();
        for n in 0..1000u32 {
            let now = t0 + Duration::from_millis(u64::from(n));
            assert_eq!(limiter.check_at(&format!("k{n}"), now), Ok(()));
            assert!(limiter.tracked_keys() <= 20);
        }
        // The most recent key is still remembered, and still limited.
        assert!(limiter.check_at("k999", t0 + SECOND).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(5)), 1);
        assert_eq!(retry_after_seconds(6 * SECOND), 6);
        assert_eq!(retry_after_seconds(Duration::from_millis(6001)), 7);
    }

    #[test]
    fn api_keys_are_fingerprinted_not_kept() {
        let mut headers = HeaderMap::new();
        assert_eq!(api_key_fingerprint(&headers), None);
        headers.insert("x-ckan-api-key", HeaderValue::from_static("s3cret"));
        let ckan = api_key_fingerprint(&headers).unwrap();
        assert_eq!(ckan.len(), 32);
        assert!(!ckan.contains("s3cret"));
        // The first 16 bytes of SHA-256("s3cret").
        assert_eq!(ckan, "1ec1c26b50d5d3c58d9583181af80766");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert_ne!(api_key_fingerprint(&headers).unwrap(), ckan);
    }

    #[test]
    fn the_csp_allows_no_inline_or_eval() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(HeaderValue::from_str(CONTENT_SECURITY_POLICY).is_ok());
        assert!(!security_header_values(false)
            .iter()
            .any(|(name, _)| name == header::STRICT_TRANSPORT_SECURITY));
        assert!(security_header_values(true)
            .iter()
            .any(|(name, _)| name == header::STRICT_TRANSPORT_SECURITY));
    }
}
