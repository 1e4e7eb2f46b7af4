//! The four scenarios. Each starts its own renkei over an empty store (so scenarios
//! never see each other's data and can be run alone), warms the connection pool up
//! with requests that are not counted, measures renkei, and measures its baseline(s)
//! in the same process under the same load.

use crate::data::{self, SplitMix};
use crate::error::BenchError;
use crate::load::{self, Timings};
use crate::stats::{Measurement, Ratio};
use crate::targets::{self, Backend, Running};
use axum::body::Bytes;
use std::sync::Arc;

const NGSI: &str = "/ngsi-ld/v1";
const BATCH: usize = 100;

/// What every scenario is given.
pub struct Settings {
    pub requests: usize,
    /// Requests per query measurement (queries cost far more than writes; see main).
    pub query_requests: usize,
    pub concurrency: usize,
    pub backend: Backend,
    pub client: reqwest::Client,
}

/// What a scenario found: rows for the table, ratios, and remarks about the data.
#[derive(Default)]
pub struct Outcome {
    pub measurements: Vec<Measurement>,
    pub ratios: Vec<Ratio>,
    pub notes: Vec<String>,
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

fn to_bytes(value: &serde_json::Value) -> Bytes {
    Bytes::from(value.to_string())
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

fn bodies(prefix: &str, count: usize) -> Arc<Vec<Bytes>> {
    Arc::new(
        (0..count)
            .map(|n| to_bytes(&data::shelter(prefix, n)))
            .collect(),
    )
}

fn batches(prefix: &str, entities: usize) -> Arc<Vec<Bytes>> {
    Arc::new(
        (0..entities.div_ceil(BATCH))
            .map(|b| {
                let count = BATCH.min(entities - b * BATCH);
                to_bytes(&data::shelter_batch(prefix, b * BATCH, count))
            })
            .collect(),
    )
}

fn bare_fixtures() -> (serde_json::Value, serde_json::Value) {
    (
        data::shelter_batch("fixed", 0, BATCH),
        data::shelter("fixed", 0),
    )
}

/// Fills renkei with `count` shelters through batch upserts (not measured).
async fn load_renkei(
    s: &Settings,
    renkei: &Running,
    prefix: &str,
    count: usize,
) -> Result<(), BenchError> {
    let url = format!("{}{NGSI}/entityOperations/upsert", renkei.base);
    post_all(s, url, batches(prefix, count), &[201, 204])
        .await
        .map(drop)
}

/// `create`: one new entity per request, against the bare server and raw SQLite.
pub async fn create(s: &Settings) -> Result<Outcome, BenchError> {
    let n = s.requests;
    let renkei = targets::start_renkei(&s.backend).await?;
    let url = format!("{}{NGSI}/entities", renkei.base);
    post_all(s, url.clone(), bodies("warm", s.warmup()), &[201]).await?;
    let r = measure(
        "create",
        "renkei",
        post_all(s, url, bodies("c", n), &[201]).await?,
        1,
        "req",
    );
    drop(renkei);

    let (list, one) = bare_fixtures();
    let bare = targets::start_bare(&list, &one).await?;
    let url = format!("{}/entities", bare.base);
    post_all(s, url.clone(), bodies("warm", s.warmup()), &[201]).await?;
    let a = measure(
        "create",
        "bare-axum",
        post_all(s, url, bodies("c", n), &[201]).await?,
        1,
        "req",
    );
    drop(bare);

    let documents: Vec<(String, String)> = (0..n)
        .map(|i| (data::shelter_id("c", i), data::shelter("c", i).to_string()))
        .collect();
    let concurrency = s.concurrency;
    let raw = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().map_err(|e| BenchError::Startup {
            what: "raw SQLite baseline",
            detail: format!("creating a temporary directory: {e}"),
        })?;
        crate::raw_sqlite::insert_all(&dir.path().join("raw.db"), &documents, concurrency)
    })
    .await
    .map_err(|e| BenchError::Worker(format!("raw sqlite: {e}")))??;
    let b = measure("create", "raw-sqlite", raw, 1, "insert");

    Ok(Outcome {
        ratios: vec![Ratio::between(&r, &a), Ratio::between(&r, &b)],
        measurements: vec![r, a, b],
        notes: vec![],
    })
}

/// `batch-upsert`: 100 new entities per request; throughput is in entities.
pub async fn batch_upsert(s: &Settings) -> Result<Outcome, BenchError> {
    let n = s.requests.max(BATCH);
    let renkei = targets::start_renkei(&s.backend).await?;
    let url = format!("{}{NGSI}/entityOperations/upsert", renkei.base);
    // A few batches per worker open the pool; more would only grow the table.
    let warm_entities = (n / 10).clamp(BATCH, s.concurrency * BATCH);
    post_all(s, url.clone(), batches("warm", warm_entities), &[201, 204]).await?;
    let timings = post_all(s, url, batches("u", n), &[201, 204]).await?;
    let r = measure("batch-upsert", "renkei", timings, BATCH, "entity");
    drop(renkei);

    let (list, one) = bare_fixtures();
    let bare = targets::start_bare(&list, &one).await?;
    let url = format!("{}/entities", bare.base);
    post_all(s, url.clone(), batches("warm", warm_entities), &[201]).await?;
    let a = measure(
        "batch-upsert",
        "bare-axum",
        post_all(s, url, batches("u", n), &[201]).await?,
        BATCH,
        "entity",
    );
    Ok(Outcome {
        ratios: vec![Ratio::between(&r, &a)],
        measurements: vec![r, a],
        notes: vec![format!(
            "batch-upsert: {} requests of up to {BATCH} entities",
            n.div_ceil(BATCH)
        )],
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

/// `query`: an attribute query and a geo-query over N loaded shelters, against the
/// bare server answering a fixed 100-entity array.
pub async fn query(s: &Settings) -> Result<Outcome, BenchError> {
    let n = s.requests;
    let renkei = targets::start_renkei(&s.backend).await?;
    load_renkei(s, &renkei, "q", n).await?;
    let q_url = format!(
        "{}{NGSI}/entities?type=Shelter&q=capacity%3E{}&limit=100",
        renkei.base,
        data::QUERY_MIN_CAPACITY
    );
    let [lng, lat] = data::QUERY_POINT;
    let geo_url = format!(
        "{}{NGSI}/entities?type=Shelter&georel=near;maxDistance=={}&geometry=Point&coordinates=%5B{lng},{lat}%5D&limit=100",
        renkei.base,
        data::QUERY_MAX_DISTANCE_M
    );
    let q_found = count_returned(s, &q_url).await?;
    let geo_found = count_returned(s, &geo_url).await?;

    let warm = s.concurrency.min(s.query_requests);
    let mut measurements = Vec::new();
    for (target, url) in [("renkei-q", q_url), ("renkei-geo", geo_url)] {
        let urls = Arc::new(vec![url]);
        get_all(s, Arc::clone(&urls), warm).await?;
        let timings = get_all(s, urls, s.query_requests).await?;
        measurements.push(measure("query", target, timings, 1, "req"));
    }
    drop(renkei);

    let (list, one) = bare_fixtures();
    let bare = targets::start_bare(&list, &one).await?;
    let urls = Arc::new(vec![format!("{}/entities", bare.base)]);
    get_all(s, Arc::clone(&urls), warm).await?;
    let timings = get_all(s, urls, s.query_requests).await?;
    let a = measure("query", "bare-axum", timings, 1, "req");
    let ratios = measurements.iter().map(|r| Ratio::between(r, &a)).collect();
    measurements.push(a);
    Ok(Outcome {
        measurements,
        ratios,
        notes: vec![format!(
            "query over {n} shelters: q=capacity>{} returns {q_found} (limit 100), \
             near {}m of {:?} returns {geo_found}",
            data::QUERY_MIN_CAPACITY,
            data::QUERY_MAX_DISTANCE_M,
            data::QUERY_POINT
        )],
    })
}

/// `retrieve`: GET one entity by a random id among N loaded, against the bare server
/// answering a fixed entity.
pub async fn retrieve(s: &Settings) -> Result<Outcome, BenchError> {
    let n = s.requests;
    let renkei = targets::start_renkei(&s.backend).await?;
    load_renkei(s, &renkei, "r", n).await?;
    let mut rng = SplitMix::new(42);
    let urls: Arc<Vec<String>> = Arc::new(
        (0..n)
            .map(|_| {
                let id = data::shelter_id("r", rng.below(n as u64) as usize);
                format!("{}{NGSI}/entities/{id}", renkei.base)
            })
            .collect(),
    );
    get_all(s, Arc::clone(&urls), s.warmup()).await?;
    let r = measure("retrieve", "renkei", get_all(s, urls, n).await?, 1, "req");
    drop(renkei);

    let (list, one) = bare_fixtures();
    let bare = targets::start_bare(&list, &one).await?;
    let urls = Arc::new(vec![format!(
        "{}/entities/urn:ngsi-ld:Shelter:fixed0",
        bare.base
    )]);
    get_all(s, Arc::clone(&urls), s.warmup()).await?;
    let a = measure(
        "retrieve",
        "bare-axum",
        get_all(s, urls, n).await?,
        1,
        "req",
    );
    Ok(Outcome {
        ratios: vec![Ratio::between(&r, &a)],
        measurements: vec![r, a],
        notes: vec![],
    })
}
