//! The scenarios, each measuring what issue 2 sets a target for next to a baseline
//! measured in the same process under the same load. Writing scenarios start their own
//! renkei over an empty store; `query` and `retrieve` share one renkei loaded once with
//! `--entities` shelters (loading is timed for the notes, not measured); `memory` loads
//! a fresh renkei and reads the process's resident set before and after. Every
//! measurement is preceded by uncounted requests that open the client's connections.

use crate::data::{self, SplitMix};
use crate::error::BenchError;
use crate::goals::Goal;
use crate::load::{self, Timings};
use crate::report::{self, MemoryUse};
use crate::stats::{Measurement, Ratio};
use crate::targets::{self, Backend, Running};
use axum::body::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NGSI: &str = "/ngsi-ld/v1";
/// Entities per batch upsert, when loading and in `batch-upsert`.
const BATCH: usize = 1000;
/// Entities per query answer (the `limit` of both queries and the bare baseline).
const QUERY_LIMIT: usize = 20;
/// Parallel batch upserts while loading the `memory` scenario's renkei: few, so that
/// in-flight request bodies do not weigh on what is measured.
const MEMORY_CONCURRENCY: usize = 4;
/// The memory target, 150 MB, in MiB (what the report prints).
const MEMORY_TARGET_MIB: f64 = 150_000_000.0 / (1024.0 * 1024.0);

/// What every scenario is given.
pub struct Settings {
    /// Requests of `create` and `retrieve`.
    pub requests: usize,
    /// Requests per query measurement.
    pub query_requests: usize,
    /// Shelters loaded for `query` and `retrieve`, and sent by `batch-upsert`.
    pub entities: usize,
    /// Shelters loaded by the `memory` scenario.
    pub memory_entities: usize,
    pub concurrency: usize,
    pub backend: Backend,
    pub client: reqwest::Client,
}

/// What a scenario found: rows for the table, ratios, targets and remarks.
#[derive(Default)]
pub struct Outcome {
    pub measurements: Vec<Measurement>,
    pub ratios: Vec<Ratio>,
    pub goals: Vec<Goal>,
    pub notes: Vec<String>,
    pub memory: Option<MemoryUse>,
}

impl Settings {
    /// How many requests to spend warming up: enough to open every pooled connection.
    fn warmup(&self) -> usize {
        (self.concurrency * 4).min(self.requests / 10).max(1)
    }
}

fn measure(scenario: &str, target: &str, t: Timings, items: usize, unit: &str) -> Measurement {
    Measurement::from_durations(scenario, target, t.durations, t.elapsed, items, unit)
}

/// `count` rounded up to whole batches (at least one), so every request carries
/// exactly `BATCH` entities and throughput per entity is exact.
fn whole_batches(count: usize) -> usize {
    count.div_ceil(BATCH).max(1) * BATCH
}

/// Shelters `0..count` of a family as `(id, JSON text)`, the rows every target gets.
fn documents(prefix: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|n| {
            (
                data::shelter_id(prefix, n),
                data::shelter(prefix, n).to_string(),
            )
        })
        .collect()
}

/// One request body per document.
fn single_bodies(docs: &[(String, String)]) -> Arc<Vec<Bytes>> {
    Arc::new(
        docs.iter()
            .map(|(_, doc)| Bytes::from(doc.clone()))
            .collect(),
    )
}

/// One JSON-array body per `BATCH` documents.
fn batch_bodies(docs: &[(String, String)]) -> Arc<Vec<Bytes>> {
    Arc::new(
        docs.chunks(BATCH)
            .map(|chunk| {
                let items: Vec<&str> = chunk.iter().map(|(_, doc)| doc.as_str()).collect();
                Bytes::from(format!("[{}]", items.join(",")))
            })
            .collect(),
    )
}

/// POSTs every body of `bodies` to `url`, `concurrency` at a time.
async fn post_all(
    s: &Settings,
    url: String,
    bodies: Arc<Vec<Bytes>>,
    expected: &'static [u16],
) -> Result<Timings, BenchError> {
    let client = s.client.clone();
    let url = Arc::new(url);
    load::run(bodies.len(), s.concurrency, move |i| {
        let (client, url, bodies) = (client.clone(), Arc::clone(&url), Arc::clone(&bodies));
        async move {
            let body = bodies.get(i).cloned().unwrap_or_default();
            load::post_json(&client, &url, body, expected)
                .await
                .map(drop)
        }
    })
    .await
}

/// GETs each of `urls` (operation `i` takes `urls[i % len]`), `total` in all.
async fn get_all(
    s: &Settings,
    urls: Arc<Vec<String>>,
    total: usize,
) -> Result<Timings, BenchError> {
    let client = s.client.clone();
    load::run(total, s.concurrency, move |i| {
        let (client, urls) = (client.clone(), Arc::clone(&urls));
        async move {
            let url = urls.get(i % urls.len().max(1)).map_or("", String::as_str);
            load::get(&client, url).await.map(drop)
        }
    })
    .await
}

/// Fills renkei with shelters `0..count` of `prefix` by batch upserts of `BATCH`,
/// `concurrency` at a time. Each body is generated when it is sent, so that a million
/// entities never sit in this process at once.
async fn load_renkei(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Result<Timings, BenchError> {
    let url = Arc::new(format!("{base}{NGSI}/entityOperations/upsert"));
    let prefix: Arc<str> = Arc::from(prefix);
    let client = client.clone();
    load::run(count.div_ceil(BATCH), concurrency, move |b| {
        let (client, url, prefix) = (client.clone(), Arc::clone(&url), Arc::clone(&prefix));
        async move {
            let start = b * BATCH;
            let size = BATCH.min(count.saturating_sub(start));
            let body = Bytes::from(data::shelter_batch(&prefix, start, size).to_string());
            load::post_json(&client, &url, body, &[201, 204])
                .await
                .map(drop)
        }
    })
    .await
}

/// The bare server's fixtures: a `QUERY_LIMIT`-entity array and one entity.
pub(crate) async fn start_bare() -> Result<Running, BenchError> {
    targets::start_bare(
        &data::shelter_batch("fixed", 0, QUERY_LIMIT),
        &data::shelter("fixed", 0),
    )
    .await
}

/// Runs the raw SQLite baseline over `docs` in a fresh temporary database.
async fn raw_sqlite(
    docs: Vec<(String, String)>,
    batch: usize,
    concurrency: usize,
) -> Result<Timings, BenchError> {
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().map_err(|e| BenchError::Startup {
            what: "raw SQLite baseline",
            detail: format!("creating a temporary directory: {e}"),
        })?;
        crate::raw_sqlite::insert_batches(&dir.path().join("raw.db"), &docs, batch, concurrency)
    })
    .await
    .map_err(|e| BenchError::Worker(format!("raw sqlite: {e}")))?
}

/// `create`: one new entity per request, against the bare server (HTTP and JSON
/// cost) and raw SQLite inserting each document in its own transaction.
pub async fn create(s: &Settings) -> Result<Outcome, BenchError> {
    let docs = documents("c", s.requests);
    let warm = single_bodies(&documents("warm", s.warmup()));
    let bodies = single_bodies(&docs);

    let renkei = targets::start_renkei(&s.backend).await?;
    let url = format!("{}{NGSI}/entities", renkei.base);
    post_all(s, url.clone(), Arc::clone(&warm), &[201]).await?;
    let timings = post_all(s, url, Arc::clone(&bodies), &[201]).await?;
    let r = measure("create", "renkei", timings, 1, "req");
    drop(renkei);

    let bare = start_bare().await?;
    let url = format!("{}/entities", bare.base);
    post_all(s, url.clone(), warm, &[201]).await?;
    let a = measure(
        "create",
        "bare-axum",
        post_all(s, url, bodies, &[201]).await?,
        1,
        "req",
    );
    drop(bare);

    let b = measure(
        "create",
        "raw-sqlite",
        raw_sqlite(docs, 1, s.concurrency).await?,
        1,
        "insert",
    );
    let vs_bare = Ratio::between(&r, &a);
    let goals = vec![
        Goal::at_least("create renkei throughput", r.throughput, 10_000.0, "req/s"),
        Goal::at_least(
            "create renkei/bare-axum throughput",
            vs_bare.throughput_ratio,
            0.25,
            "x",
        ),
    ];
    Ok(Outcome {
        notes: vec![format!(
            "create: target {} and {} bare-axum",
            goals[0].describe_target(),
            goals[1].describe_target()
        )],
        ratios: vec![vs_bare, Ratio::between(&r, &b)],
        measurements: vec![r, a, b],
        goals,
        memory: None,
    })
}

/// `batch-upsert`: `--entities` new entities (whole batches) in upserts of `BATCH`;
/// throughput is in entities. Baselines: raw SQLite inserting the same rows one
/// transaction per batch, and the bare server parsing the same bodies.
pub async fn batch_upsert(s: &Settings) -> Result<Outcome, BenchError> {
    let n = whole_batches(s.entities);
    let docs = documents("u", n);
    let bodies = batch_bodies(&docs);
    // A few batches per worker open the pool; more would only grow the table.
    let warm_entities = whole_batches((n / 10).min(s.concurrency * BATCH));
    let warm = batch_bodies(&documents("warm", warm_entities));

    let renkei = targets::start_renkei(&s.backend).await?;
    let url = format!("{}{NGSI}/entityOperations/upsert", renkei.base);
    post_all(s, url.clone(), Arc::clone(&warm), &[201, 204]).await?;
    let timings = post_all(s, url, Arc::clone(&bodies), &[201, 204]).await?;
    let r = measure("batch-upsert", "renkei", timings, BATCH, "entity");
    drop(renkei);

    let bare = start_bare().await?;
    let url = format!("{}/entities", bare.base);
    post_all(s, url.clone(), warm, &[201]).await?;
    let timings = post_all(s, url, bodies, &[201]).await?;
    let a = measure("batch-upsert", "bare-axum", timings, BATCH, "entity");
    drop(bare);

    let timings = raw_sqlite(docs, BATCH, s.concurrency).await?;
    let b = measure("batch-upsert", "raw-sqlite", timings, BATCH, "entity");
    let vs_raw = Ratio::between(&r, &b);
    let goals = vec![
        Goal::at_least(
            "batch-upsert renkei throughput",
            r.throughput,
            50_000.0,
            "entity/s",
        ),
        Goal::at_least(
            "batch-upsert renkei/raw-sqlite throughput",
            vs_raw.throughput_ratio,
            0.5,
            "x",
        ),
    ];
    Ok(Outcome {
        notes: vec![format!(
            "batch-upsert: {} requests of {BATCH} entities; raw-sqlite inserts the same rows \
             {BATCH} per transaction; target {} and {} raw-sqlite",
            n / BATCH,
            goals[0].describe_target(),
            goals[1].describe_target()
        )],
        ratios: vec![vs_raw, Ratio::between(&r, &a)],
        measurements: vec![r, a, b],
        goals,
        memory: None,
    })
}

/// How many entities one GET answers (for the notes; 0 when not an array).
async fn count_returned(s: &Settings, url: &str) -> Result<usize, BenchError> {
    let body = load::get(&s.client, url).await?;
    Ok(serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0))
}

/// The attribute query and the geo-query, against renkei at `base`.
fn query_urls(base: &str) -> (String, String) {
    let [lng, lat] = data::QUERY_POINT;
    (
        format!(
            "{base}{NGSI}/entities?type=Shelter&q=capacity%3E{}&limit={QUERY_LIMIT}",
            data::QUERY_MIN_CAPACITY
        ),
        format!(
            "{base}{NGSI}/entities?type=Shelter&georel=near;maxDistance=={}\
             &geometry=Point&coordinates=%5B{lng:.5},{lat:.5}%5D&limit={QUERY_LIMIT}",
            data::QUERY_MAX_DISTANCE_M
        ),
    )
}

/// GET by id of `total` random ids among shelters `0..count` of `prefix`.
fn retrieve_urls(base: &str, prefix: &str, count: usize, total: usize) -> Arc<Vec<String>> {
    let mut rng = SplitMix::new(42);
    Arc::new(
        (0..total)
            .map(|_| {
                let id = data::shelter_id(prefix, rng.below(count as u64) as usize);
                format!("{base}{NGSI}/entities/{id}")
            })
            .collect(),
    )
}

/// Warms up with `warm` requests, then measures `total`.
pub(crate) async fn measure_gets(
    s: &Settings,
    scenario: &str,
    target: &str,
    urls: Arc<Vec<String>>,
    warm: usize,
    total: usize,
) -> Result<Measurement, BenchError> {
    get_all(s, Arc::clone(&urls), warm).await?;
    let timings = get_all(s, urls, total).await?;
    Ok(measure(scenario, target, timings, 1, "req"))
}

pub(crate) fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// `query` and/or `retrieve` over one renkei loaded once with `--entities` shelters.
/// `query`: `q=capacity>150` and a 1 km near geo-query, `limit=20`, against the bare
/// server answering a fixed 20-entity array. `retrieve`: GET by random id, against
/// the bare server answering a fixed entity.
pub async fn read(s: &Settings, query: bool, retrieve: bool) -> Result<Outcome, BenchError> {
    let n = s.entities;
    let mut out = Outcome::default();
    let renkei = targets::start_renkei(&s.backend).await?;
    let started = Instant::now();
    load_renkei(&s.client, &renkei.base, "s", n, s.concurrency).await?;
    let took = started.elapsed();
    renkei.settle().await?;
    out.notes.push(format!(
        "query/retrieve: loaded {n} shelters in {} ({:.0} entities/s, batch upserts of {BATCH}; not measured)",
        seconds(took),
        n as f64 / took.as_secs_f64().max(f64::EPSILON)
    ));

    let warm = s.concurrency.min(s.query_requests);
    let mut renkei_rows = Vec::new();
    if query {
        let (q_url, geo_url) = query_urls(&renkei.base);
        let q_found = count_returned(s, &q_url).await?;
        let geo_found = count_returned(s, &geo_url).await?;
        let total = s.query_requests;
        let q = measure_gets(s, "query", "renkei-q", Arc::new(vec![q_url]), warm, total).await?;
        let geo = measure_gets(
            s,
            "query",
            "renkei-geo",
            Arc::new(vec![geo_url]),
            warm,
            total,
        )
        .await?;
        out.goals.extend([
            Goal::at_least("query q throughput", q.throughput, 3_000.0, "req/s"),
            Goal::at_most("query q p95", q.p95_ms, 10.0, "ms"),
            Goal::at_least("query geo throughput", geo.throughput, 3_000.0, "req/s"),
        ]);
        out.notes.push(format!(
            "query over {n} shelters: q=capacity>{} returns {q_found} (limit {QUERY_LIMIT}), \
             near {} m of [{:.5}, {:.5}] returns {geo_found}; target ≥3000 req/s each, \
             q p95 ≤10 ms",
            data::QUERY_MIN_CAPACITY,
            data::QUERY_MAX_DISTANCE_M,
            data::QUERY_POINT[0],
            data::QUERY_POINT[1]
        ));
        renkei_rows.extend([q, geo]);
    }
    if retrieve {
        let urls = retrieve_urls(&renkei.base, "s", n, s.requests);
        let r = measure_gets(s, "retrieve", "renkei", urls, s.warmup(), s.requests).await?;
        out.goals.push(Goal::at_least(
            "retrieve renkei throughput",
            r.throughput,
            20_000.0,
            "req/s",
        ));
        out.notes.push(format!(
            "retrieve: GET by id of random ids among the {n}; target ≥20000 req/s"
        ));
        renkei_rows.push(r);
    }
    drop(renkei);

    let bare = start_bare().await?;
    let mut baselines = Vec::new();
    if query {
        let urls = Arc::new(vec![format!("{}/entities", bare.base)]);
        baselines.push(measure_gets(s, "query", "bare-axum", urls, warm, s.query_requests).await?);
    }
    if retrieve {
        let urls = Arc::new(vec![format!(
            "{}/entities/{}",
            bare.base,
            data::shelter_id("fixed", 0)
        )]);
        baselines
            .push(measure_gets(s, "retrieve", "bare-axum", urls, s.warmup(), s.requests).await?);
    }
    for r in &renkei_rows {
        if let Some(a) = baselines.iter().find(|a| a.scenario == r.scenario) {
            out.ratios.push(Ratio::between(r, a));
        }
    }
    for scenario in ["query", "retrieve"] {
        out.measurements.extend(
            renkei_rows
                .iter()
                .chain(&baselines)
                .filter(|m| m.scenario == scenario)
                .cloned(),
        );
    }
    Ok(out)
}

/// `memory`: a fresh renkei is loaded with `--memory-entities` shelters (batch upserts
/// of `BATCH`, `MEMORY_CONCURRENCY` at a time) and, after a few queries have touched
/// the data, the process's resident set is read next to the reading taken right after
/// start-up. The readings cover the whole process (the client too), so the target is
/// judged on a figure that if anything overstates renkei's share.
pub async fn memory(s: &Settings) -> Result<Outcome, BenchError> {
    let n = whole_batches(s.memory_entities);
    let no_rss = || BenchError::Startup {
        what: "memory scenario",
        detail: "/proc/PID/status has no VmRSS line (not Linux?)".into(),
    };
    if !matches!(s.backend, targets::Backend::Sqlite) {
        return Err(BenchError::Usage(
            "the memory scenario measures the embedded default, SQLite; leave out --backend".into(),
        ));
    }
    // renkei runs as its own process here, so that its memory is read apart from the
    // load generator's.
    let renkei = targets::start_renkei_process(&s.client).await?;
    let before = renkei.rss_kib().ok_or_else(no_rss)?;
    let timings = load_renkei(&s.client, &renkei.base, "m", n, MEMORY_CONCURRENCY).await?;
    let took = timings.elapsed;
    let load = measure("memory", "renkei-load", timings, BATCH, "entity");

    // A few of each read, so caches and indexes a query fills are part of the reading.
    let (q_url, geo_url) = query_urls(&renkei.base);
    let mut urls = vec![q_url, geo_url];
    urls.extend(retrieve_urls(&renkei.base, "m", n, 8).iter().cloned());
    get_all(s, Arc::new(urls), 40).await?;
    let after = renkei.rss_kib().ok_or_else(no_rss)?;
    drop(renkei);

    let goal = Goal::at_most("memory RSS", report::mib(after), MEMORY_TARGET_MIB, "MiB");
    Ok(Outcome {
        notes: vec![format!(
            "memory: loaded {n} shelters in {} ({MEMORY_CONCURRENCY} parallel batch upserts \
             of {BATCH}); RSS {:.1} MiB after start-up, {:.1} MiB loaded and queried; \
             target ≤150 MB ({:.1} MiB), the renkei process alone",
            seconds(took),
            report::mib(before),
            report::mib(after),
            MEMORY_TARGET_MIB
        )],
        measurements: vec![load],
        ratios: vec![],
        goals: vec![goal],
        memory: Some(MemoryUse {
            entities: n,
            rss_before_kib: before,
            rss_after_kib: after,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_whole_and_bodies_are_json_arrays_of_the_documents() {
        assert_eq!(whole_batches(0), BATCH);
        assert_eq!(whole_batches(BATCH), BATCH);
        assert_eq!(whole_batches(BATCH + 1), 2 * BATCH);
        let docs = documents("t", BATCH + 3);
        let bodies = batch_bodies(&docs);
        assert_eq!(bodies.len(), 2);
        let last: serde_json::Value = serde_json::from_slice(&bodies[1]).unwrap();
        assert_eq!(last.as_array().unwrap().len(), 3);
        assert_eq!(last[2], data::shelter("t", BATCH + 2));
        let first: serde_json::Value = serde_json::from_slice(&bodies[0]).unwrap();
        assert_eq!(first, data::shelter_batch("t", 0, BATCH));
        assert_eq!(single_bodies(&docs[..2]).len(), 2);
    }

    #[test]
    fn query_urls_carry_the_issue_2_queries() {
        let (q, geo) = query_urls("http://h");
        assert_eq!(
            q,
            "http://h/ngsi-ld/v1/entities?type=Shelter&q=capacity%3E150&limit=20"
        );
        assert!(geo.contains("georel=near;maxDistance==1000&geometry=Point"));
        assert!(geo.contains("coordinates=%5B138.32000,35.11500%5D&limit=20"));
        let ids = retrieve_urls("http://h", "s", 10, 50);
        assert_eq!(ids.len(), 50);
        assert!(ids.iter().all(|u| {
            u.strip_prefix("http://h/ngsi-ld/v1/entities/urn:ngsi-ld:Shelter:s")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n < 10)
        }));
    }
}
