//! `catalog-search`: `--datasets` datasets with Japanese titles, descriptions and
//! tags over twelve Shizuoka municipalities, created through
//! `catalog::service::Catalog::package_create` as the operator (set-up, timed for the
//! notes only); then `GET package_search?q=避難` and a second query with facets and
//! `fq`, driven `--concurrency` at a time and one at a time. Baseline: a bare axum
//! route answering the very bytes renkei answered for the first query.

use super::places::{FORMATS, MUNICIPALITIES, THEMES, TOWNS};
use super::start;
use crate::error::BenchError;
use crate::goals::Goal;
use crate::load;
use crate::scenarios::{measure_gets, seconds, Outcome, Settings};
use crate::stats::Ratio;
use axum::body::Bytes;
use axum::http::header;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

const SCENARIO: &str = "catalog-search";

/// The CKAN dataset dictionary of dataset `n`.
pub fn dataset(n: usize) -> Value {
    let city = &MUNICIPALITIES[n % MUNICIPALITIES.len()];
    let (title, description, tags) = THEMES[(n / MUNICIPALITIES.len()) % THEMES.len()];
    let (town, _, _) = TOWNS[(n / 7) % TOWNS.len()];
    // Reiwa 1 to 8, so that a theme recurs per municipality with different years.
    let year = 1 + (n / (MUNICIPALITIES.len() * THEMES.len())) % 8;
    // Not a multiple of the municipalities, so every one has every format.
    let format = FORMATS[(n / 5) % FORMATS.len()];
    let mut tag_list: Vec<Value> = tags.iter().map(|t| json!({"name": t})).collect();
    tag_list.push(json!({"name": city.name}));
    json!({
        "name": format!("{}-{n:06}", city.romaji),
        "title": format!("{}{title}（{town}地区・令和{year}年度）", city.name),
        "notes": format!(
            "{description}{}{town}地区について、令和{year}年4月1日現在の内容です。",
            city.name
        ),
        "owner_org": city.code,
        "license_id": "CC-BY-4.0",
        "tags": tag_list,
        "resources": [{
            "url": format!("https://www.city.{}.lg.jp/opendata/{n:06}.{}", city.romaji, format.to_ascii_lowercase()),
            "name": title,
            "format": format,
        }],
    })
}

/// The two searches: a bare Japanese word, and a phrase with facets and filters.
fn search_urls(base: &str) -> Result<[String; 2], BenchError> {
    let endpoint = format!("{base}/api/3/action/package_search");
    let url = |params: &[(&str, &str)]| {
        reqwest::Url::parse_with_params(&endpoint, params)
            .map(String::from)
            .map_err(|e| BenchError::Usage(format!("search URL: {e}")))
    };
    Ok([
        url(&[("q", "避難")])?,
        url(&[
            ("q", "避難所"),
            ("facet.field", r#"["organization","tags","res_format"]"#),
            ("fq", "organization:222127 res_format:CSV"),
        ])?,
    ])
}

async fn create_datasets(
    state: &server::AppState,
    total: usize,
    concurrency: usize,
) -> Result<(), BenchError> {
    let access = server::ckan::CallerAccess::new(state, identity::Principal::Operator)
        .await
        .map_err(|e| BenchError::Startup {
            what: "catalog search datasets",
            detail: format!("{e:?}"),
        })?;
    let access = Arc::new(access);
    let state = Arc::new(state.clone());
    load::run(total, concurrency, move |n| {
        let (state, access) = (Arc::clone(&state), Arc::clone(&access));
        async move {
            let dict = match dataset(n) {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            state
                .catalog
                .package_create(&dict, access.as_ref())
                .await
                .map(drop)
                .map_err(|e| BenchError::Startup {
                    what: "catalog search datasets",
                    detail: format!("dataset {n}: {e:?}"),
                })
        }
    })
    .await
    .map(drop)
}

/// `catalog-search` over `datasets` datasets.
pub async fn search(s: &Settings, datasets: usize) -> Result<Outcome, BenchError> {
    let codes: Vec<&str> = MUNICIPALITIES.iter().map(|m| m.code).collect();
    let renkei = start(&s.backend, &codes).await?;
    let started = Instant::now();
    create_datasets(&renkei.state, datasets, s.concurrency).await?;
    let took = started.elapsed();
    let mut out = Outcome::default();
    out.notes.push(format!(
        "catalog-search: created {datasets} datasets over {} organisations in {} ({:.0}/s, \
         Catalog::package_create, {} at a time; not measured)",
        codes.len(),
        seconds(took),
        datasets as f64 / took.as_secs_f64().max(f64::EPSILON),
        s.concurrency
    ));
    let urls = search_urls(&renkei.base)?;
    // The first search builds the index; time it apart.
    let started = Instant::now();
    let first = load::get(&s.client, &urls[0]).await?;
    let index_build = started.elapsed();
    let second = load::get(&s.client, &urls[1]).await?;
    let count = |body: &Bytes| {
        serde_json::from_slice::<Value>(body)
            .map_or(0, |v| v["result"]["count"].as_u64().unwrap_or(0))
    };
    out.notes.push(format!(
        "catalog-search: q=避難 finds {} (first call, building the index: {:.0} ms); \
         q=避難所 with facet.field=[organization,tags,res_format] and \
         fq=organization:222127 res_format:CSV finds {}; rows=10; target p95 ≤10 ms",
        count(&first),
        index_build.as_secs_f64() * 1000.0,
        count(&second)
    ));

    let total = s.query_requests;
    let warm = s.concurrency.min(total);
    let one_at_a_time = Settings {
        concurrency: 1,
        client: s.client.clone(),
        backend: s.backend.clone(),
        requests: s.requests,
        query_requests: s.query_requests,
        entities: s.entities,
        memory_entities: s.memory_entities,
    };
    let sequential = (total / 10).max(100);
    let mut renkei_rows = Vec::new();
    for (url, name) in urls.iter().zip(["q", "facets-fq"]) {
        let urls = Arc::new(vec![url.clone()]);
        let concurrent = measure_gets(
            s,
            SCENARIO,
            &format!("renkei-{name}"),
            Arc::clone(&urls),
            warm,
            total,
        )
        .await?;
        let single = measure_gets(
            &one_at_a_time,
            SCENARIO,
            &format!("renkei-{name}-c1"),
            urls,
            10,
            sequential,
        )
        .await?;
        out.goals.push(Goal::at_most(
            &format!("catalog-search {name} p95 (concurrency {})", s.concurrency),
            concurrent.p95_ms,
            10.0,
            "ms",
        ));
        out.goals.push(Goal::at_most(
            &format!("catalog-search {name} p95 (one at a time)"),
            single.p95_ms,
            10.0,
            "ms",
        ));
        renkei_rows.extend([concurrent, single]);
    }
    drop(renkei);

    let body = first.clone();
    let router = axum::Router::new().route(
        "/api/3/action/package_search",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let (base, task) = crate::targets::serve(router, "bare package_search").await?;
    let bare_urls = Arc::new(vec![format!("{base}/api/3/action/package_search")]);
    let bare = measure_gets(s, SCENARIO, "bare-axum", bare_urls, warm, total).await;
    task.abort();
    let bare = bare?;
    for r in renkei_rows.iter().filter(|r| !r.target.ends_with("-c1")) {
        out.ratios.push(Ratio::between(r, &bare));
    }
    out.measurements.extend(renkei_rows);
    out.measurements.push(bare);
    Ok(out)
}
