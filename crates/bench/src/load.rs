//! The load driver: `concurrency` tokio tasks pull operation numbers from one shared
//! counter until `total` are done, each timing its own operations. A closed loop (a
//! worker sends its next request only when the last one answered) measures what the
//! server sustains rather than how long a queue grows. Also the HTTP helpers the
//! scenarios share, which read every response body to the end so that the cost of
//! producing it is counted.

use crate::error::BenchError;
use axum::body::Bytes;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Per-operation latencies and the wall-clock time of the whole run.
pub struct Timings {
    pub durations: Vec<Duration>,
    pub elapsed: Duration,
}

/// Runs operations `0..total` with `concurrency` workers; stops at the first failure.
pub async fn run<F, Fut>(total: usize, concurrency: usize, op: F) -> Result<Timings, BenchError>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BenchError>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let workers = concurrency.clamp(1, total.max(1));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let op = Arc::clone(&op);
        let next = Arc::clone(&next);
        set.spawn(async move {
            let mut mine = Vec::with_capacity(total / workers + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                op(i).await?;
                mine.push(t.elapsed());
            }
            Ok::<_, BenchError>(mine)
        });
    }
    let mut durations = Vec::with_capacity(total);
    while let Some(joined) = set.join_next().await {
        let result = match joined {
            Ok(result) => result,
            Err(e) => Err(BenchError::Worker(e.to_string())),
        };
        match result {
            Ok(mine) => durations.extend(mine),
            Err(e) => {
                set.abort_all();
                return Err(e);
            }
        }
    }
    Ok(Timings {
        durations,
        elapsed: started.elapsed(),
    })
}

/// One HTTP client for the whole run: its pool keeps a keep-alive connection per
/// worker, so connection set-up is not part of what is measured.
pub fn client(concurrency: usize) -> Result<reqwest::Client, BenchError> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .tcp_nodelay(true)
        // A proxy configured in the environment must not sit between us and loopback.
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| BenchError::Http {
            what: "building the HTTP client".into(),
            source,
        })
}

/// POSTs a JSON body and checks the status is one of `expected`.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    expected: &[u16],
) -> Result<Bytes, BenchError> {
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    finish(request, url, expected).await
}

/// PATCHes a JSON body and checks the status is one of `expected`.
pub async fn patch_json(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    expected: &[u16],
) -> Result<Bytes, BenchError> {
    let request = client
        .patch(url)
        .header("content-type", "application/json")
        .body(body);
    finish(request, url, expected).await
}

/// GETs a URL and checks the status is 200.
pub async fn get(client: &reqwest::Client, url: &str) -> Result<Bytes, BenchError> {
    finish(client.get(url), url, &[200]).await
}

async fn finish(
    request: reqwest::RequestBuilder,
    url: &str,
    expected: &[u16],
) -> Result<Bytes, BenchError> {
    let http = |source| BenchError::Http {
        what: url.to_owned(),
        source,
    };
    let response = request.send().await.map_err(http)?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(http)?;
    if !expected.contains(&status) {
        return Err(BenchError::Status {
            what: url.to_owned(),
            expected: expected.first().copied().unwrap_or(200),
            got: status,
            body: String::from_utf8_lossy(body.get(..500).unwrap_or(&body)).into_owned(),
        });
    }
    Ok(body)
}
