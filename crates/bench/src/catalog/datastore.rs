//! `catalog-datastore`: a datastore table of `--table-rows` evacuation sites made by
//! `datastore_create` with one index over 全国地方公共団体コード and 種別 (the index
//! a publisher declares for this query, CKAN's `"indexes": ["a,b"]`), loaded by
//! `datastore_upsert` (method insert) in batches of 10,000 over HTTP (timed for the
//! notes only); then `GET datastore_search` with those two columns as filters
//! (CKAN's defaults: 100 rows and the total), the municipality and kind varying per
//! request. Baseline: the same queries as direct `DatastoreStore::search_rows` calls
//! on the store renkei uses, with the same concurrency: what the API adds to the
//! storage engine.

use super::places::{MUNICIPALITIES, SITE_KINDS, TOWNS};
use super::{call, start};
use crate::data::SplitMix;
use crate::error::BenchError;
use crate::goals::Goal;
use crate::load;
use crate::scenarios::{measure_gets, seconds, Outcome, Settings};
use crate::stats::{Measurement, Ratio};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use store::datastore::{Cell, ColumnFilter, RowQuery};

const SCENARIO: &str = "catalog-datastore";
const ORG: &str = "222127";
const LOAD_BATCH: usize = 10_000;
/// Upserts in flight while loading.
const LOAD_CONCURRENCY: usize = 2;
const CODE: &str = "全国地方公共団体コード";
const KIND: &str = "種別";

/// Record `n` of the table.
fn record(n: usize) -> Value {
    let mut rng = SplitMix::new(0x4453_0000 ^ n as u64);
    let city = &MUNICIPALITIES[rng.below(MUNICIPALITIES.len() as u64) as usize];
    let (kind, _, _, _) = SITE_KINDS[rng.below(SITE_KINDS.len() as u64) as usize];
    let (town, _, _) = TOWNS[rng.below(TOWNS.len() as u64) as usize];
    json!({
        CODE: city.code,
        "ID": format!("{}{:07}", city.code, n + 1),
        "名称": format!("{town}第{}{kind}", n % 97 + 1),
        KIND: kind,
        "所在地_連結表記": format!("静岡県{}{town}{}丁目{}番地", city.name, 1 + n % 9, 1 + n % 3000),
        "緯度": city.lat + (rng.next_f64() - 0.5) * 0.15,
        "経度": city.lon + (rng.next_f64() - 0.5) * 0.18,
        "想定収容人数": 50 + rng.below(40) * 50,
    })
}

/// The (municipality, kind) pair of query `i`.
fn query_pair(i: usize) -> (&'static str, &'static str) {
    let city = MUNICIPALITIES[i % MUNICIPALITIES.len()].code;
    let kind = SITE_KINDS[(i / MUNICIPALITIES.len()) % SITE_KINDS.len()].0;
    (city, kind)
}

/// Every (municipality, kind) pair once.
fn pairs() -> usize {
    MUNICIPALITIES.len() * SITE_KINDS.len()
}

fn row_query(i: usize) -> RowQuery {
    let (city, kind) = query_pair(i);
    RowQuery {
        filters: vec![
            ColumnFilter {
                column: CODE.into(),
                any_of: vec![Cell::Text(city.into())],
            },
            ColumnFilter {
                column: KIND.into(),
                any_of: vec![Cell::Text(kind.into())],
            },
        ],
        limit: 100,
        include_total: true,
        ..RowQuery::default()
    }
}

async fn load_table(
    s: &Settings,
    renkei: &super::CatalogRenkei,
    rows: usize,
) -> Result<String, BenchError> {
    let package = call(
        renkei,
        &s.client,
        "package_create",
        json!({
            "name": "bench-evacuation-sites",
            "title": "指定緊急避難場所一覧（データストア）",
            "owner_org": ORG,
            "resources": [{"url": "https://example.jp/sites.csv", "name": "一覧", "format": "CSV"}],
        }),
    )
    .await?;
    let resource_id = package["resources"][0]["id"]
        .as_str()
        .ok_or_else(|| BenchError::Startup {
            what: "catalog datastore",
            detail: format!("package_create gave no resource id: {package}"),
        })?
        .to_owned();
    let fields = [
        (CODE, "text"),
        ("ID", "text"),
        ("名称", "text"),
        (KIND, "text"),
        ("所在地_連結表記", "text"),
        ("緯度", "numeric"),
        ("経度", "numeric"),
        ("想定収容人数", "int"),
    ]
    .map(|(id, ty)| json!({"id": id, "type": ty}));
    call(
        renkei,
        &s.client,
        "datastore_create",
        json!({"resource_id": resource_id, "fields": fields, "indexes": [format!("{CODE},{KIND}")]}),
    )
    .await?;
    let batches = rows.div_ceil(LOAD_BATCH);
    let (renkei_base, key) = (Arc::new(renkei.base.clone()), Arc::new(renkei.key.clone()));
    let (client, id) = (s.client.clone(), Arc::new(resource_id.clone()));
    load::run(batches, LOAD_CONCURRENCY, move |b| {
        let (client, base, key, id) = (
            client.clone(),
            Arc::clone(&renkei_base),
            Arc::clone(&key),
            Arc::clone(&id),
        );
        async move {
            let from = b * LOAD_BATCH;
            let records: Vec<Value> = (from..(from + LOAD_BATCH).min(rows)).map(record).collect();
            let body = json!({"resource_id": *id, "method": "insert", "records": records});
            let url = format!("{base}/api/3/action/datastore_upsert");
            let response = client
                .post(&url)
                .header("authorization", key.as_str())
                .json(&body)
                .send()
                .await
                .map_err(|source| BenchError::Http {
                    what: url.clone(),
                    source,
                })?;
            super::action_result(&url, response).await.map(drop)
        }
    })
    .await?;
    Ok(resource_id)
}

/// `catalog-datastore` over a table of `rows` rows.
pub async fn datastore(s: &Settings, rows: usize) -> Result<Outcome, BenchError> {
    let renkei = start(&s.backend, &[ORG]).await?;
    let started = Instant::now();
    let resource_id = load_table(s, &renkei, rows).await?;
    let took = started.elapsed();
    let mut out = Outcome::default();
    out.notes.push(format!(
        "catalog-datastore: loaded {rows} rows × 8 columns in {} ({:.0} rows/s, datastore_upsert \
         of {LOAD_BATCH}, {LOAD_CONCURRENCY} at a time; not measured)",
        seconds(took),
        rows as f64 / took.as_secs_f64().max(f64::EPSILON)
    ));
    let endpoint = format!("{}/api/3/action/datastore_search", renkei.base);
    let urls: Vec<String> = (0..pairs())
        .map(|i| {
            let (city, kind) = query_pair(i);
            let filters = json!({CODE: city, KIND: kind}).to_string();
            reqwest::Url::parse_with_params(
                &endpoint,
                &[("resource_id", resource_id.as_str()), ("filters", &filters)],
            )
            .map(String::from)
            .map_err(|e| BenchError::Usage(format!("datastore URL: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let first: Value =
        serde_json::from_slice(&load::get(&s.client, &urls[0]).await?).unwrap_or_default();
    let store = renkei.state.datastore.clone();
    let raw_total = store
        .search_rows(&resource_id, &row_query(0))
        .await
        .map_err(|e| BenchError::Startup {
            what: "catalog datastore",
            detail: e.to_string(),
        })?
        .total;
    if first["result"]["total"].as_u64() != raw_total {
        return Err(BenchError::Startup {
            what: "catalog datastore",
            detail: format!(
                "datastore_search found {} rows, search_rows {raw_total:?}",
                first["result"]["total"]
            ),
        });
    }
    out.notes.push(format!(
        "catalog-datastore: filters {{{CODE}, {KIND}}} over {} pairs, e.g. {:?} matches {} rows \
         (100 returned, with the total); target p95 ≤20 ms",
        pairs(),
        query_pair(0),
        raw_total.unwrap_or(0)
    ));
    let total = s.query_requests;
    let warm = s.concurrency.min(total);
    let urls = Arc::new(urls);
    let api = measure_gets(s, SCENARIO, "renkei", Arc::clone(&urls), warm, total).await?;
    let one_at_a_time = Settings {
        concurrency: 1,
        client: s.client.clone(),
        backend: s.backend.clone(),
        requests: s.requests,
        query_requests: s.query_requests,
        entities: s.entities,
        memory_entities: s.memory_entities,
    };
    let single = measure_gets(
        &one_at_a_time,
        SCENARIO,
        "renkei-c1",
        urls,
        10,
        (total / 10).max(100),
    )
    .await?;

    let timings = {
        let (store, id) = (store.clone(), Arc::new(resource_id.clone()));
        load::run(total, s.concurrency, move |i| {
            let (store, id) = (store.clone(), Arc::clone(&id));
            async move {
                store
                    .search_rows(&id, &row_query(i))
                    .await
                    .map(drop)
                    .map_err(|e| BenchError::Startup {
                        what: "catalog datastore",
                        detail: e.to_string(),
                    })
            }
        })
        .await?
    };
    let raw = Measurement::from_durations(
        SCENARIO,
        "raw-store",
        timings.durations,
        timings.elapsed,
        1,
        "query",
    );
    drop(renkei);
    out.goals.push(Goal::at_most(
        &format!(
            "catalog-datastore two filters p95 (concurrency {})",
            s.concurrency
        ),
        api.p95_ms,
        20.0,
        "ms",
    ));
    out.goals.push(Goal::at_most(
        "catalog-datastore two filters p95 (one at a time)",
        single.p95_ms,
        20.0,
        "ms",
    ));
    out.ratios.push(Ratio::between(&api, &raw));
    out.measurements.extend([api, single, raw]);
    Ok(out)
}
