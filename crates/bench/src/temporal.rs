//! `temporal` (issue 4): one river gauge with `--instances` observations spread evenly
//! over 30 days, loaded through `POST /temporal/entities/{id}/attrs` in batches; then
//! the aggregated retrieve the issue names (avg per hour over the month) and
//! `lastN=10`, against the bare server answering a fixed body (the HTTP and JSON
//! cost). The same aggregation with a window starting mid-hour, which cannot use the
//! hourly rollups and reads every instance, is measured too, so the report shows
//! what the rollups are worth.

use crate::error::BenchError;
use crate::goals::Goal;
use crate::load;
use crate::scenarios::{measure_gets, seconds, start_bare, Outcome, Settings};
use crate::stats::Ratio;
use crate::targets;
use axum::body::Bytes;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const NGSI: &str = "/ngsi-ld/v1";
const GAUGE: &str = "urn:ngsi-ld:RiverLevel:bench";
/// Instances per loading request.
const LOAD_BATCH: usize = 5_000;
const MONTH_START: i64 = 1_780_272_000; // 2026-06-01T00:00:00Z
const MONTH_SECONDS: i64 = 30 * 86_400;

fn observed_at(index: usize, instances: usize) -> String {
    let offset = (index as i64 * MONTH_SECONDS) / instances.max(1) as i64;
    chrono::DateTime::from_timestamp(MONTH_START + offset, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn batch_body(from: usize, to: usize, instances: usize, with_head: bool) -> Bytes {
    let levels: Vec<_> = (from..to)
        .map(|i| {
            json!({
                "type": "Property",
                "value": ((i * 7919) % 1000) as f64 / 100.0,
                "observedAt": observed_at(i, instances)
            })
        })
        .collect();
    let body = if with_head {
        json!({"id": GAUGE, "type": "RiverLevel", "level": levels})
    } else {
        json!({"level": levels})
    };
    Bytes::from(body.to_string())
}

pub async fn temporal(
    s: &Settings,
    instances: usize,
    requests: usize,
) -> Result<Outcome, BenchError> {
    let mut out = Outcome::default();
    let renkei = targets::start_renkei(&s.backend).await?;
    let base = &renkei.base;
    let started = Instant::now();
    let first = LOAD_BATCH.min(instances);
    let create = format!("{base}{NGSI}/temporal/entities");
    load::post_json(
        &s.client,
        &create,
        batch_body(0, first, instances, true),
        &[201],
    )
    .await?;
    let add = format!("{base}{NGSI}/temporal/entities/{GAUGE}/attrs");
    let mut from = first;
    while from < instances {
        let to = (from + LOAD_BATCH).min(instances);
        load::post_json(
            &s.client,
            &add,
            batch_body(from, to, instances, false),
            &[204],
        )
        .await?;
        from = to;
    }
    let took = started.elapsed();
    out.notes.push(format!(
        "temporal: loaded {instances} instances of one attribute over 30 days in {} ({:.0} instances/s, {LOAD_BATCH} per request; not measured)",
        seconds(took),
        instances as f64 / took.as_secs_f64().max(f64::EPSILON)
    ));
    let window = |start: &str| {
        format!(
            "{base}{NGSI}/temporal/entities/{GAUGE}?options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=PT1H&timerel=between&timeAt={start}&endTimeAt=2026-07-01T00:00:00Z"
        )
    };
    let aggregated_url = window("2026-06-01T00:00:00Z");
    let unaligned_url = window("2026-06-01T00:30:00Z");
    let last_url = format!("{base}{NGSI}/temporal/entities/{GAUGE}?lastN=10");
    let warm = s.concurrency.min(requests);
    let aggregated = measure_gets(
        s,
        "temporal",
        "renkei-aggr-hourly",
        Arc::new(vec![aggregated_url]),
        warm,
        requests,
    )
    .await?;
    let last = measure_gets(
        s,
        "temporal",
        "renkei-lastN10",
        Arc::new(vec![last_url]),
        warm,
        requests,
    )
    .await?;
    // Every instance read and aggregated per request: a few requests are enough.
    let few = (requests / 50).max(s.concurrency);
    let unaligned = measure_gets(
        s,
        "temporal",
        "renkei-aggr-instances",
        Arc::new(vec![unaligned_url]),
        1,
        few,
    )
    .await?;
    drop(renkei);
    let bare = start_bare().await?;
    let baseline_url = Arc::new(vec![format!("{}/entities", bare.base)]);
    let baseline = measure_gets(s, "temporal", "bare-axum", baseline_url, warm, requests).await?;
    for r in [&aggregated, &last, &unaligned] {
        out.ratios.push(Ratio::between(r, &baseline));
    }
    out.goals.extend([
        Goal::at_least(
            "temporal aggregated (avg/hour, month)",
            aggregated.throughput,
            500.0,
            "req/s",
        ),
        Goal::at_least("temporal lastN=10", last.throughput, 5_000.0, "req/s"),
    ]);
    out.notes.push(format!(
        "temporal: over {instances} instances, avg per hour over 30 days (720 periods) from hourly rollups, and lastN=10; the same aggregation from a window starting 00:30 reads every instance (renkei-aggr-instances); targets ≥500 and ≥5000 req/s"
    ));
    out.measurements
        .extend([aggregated, last, unaligned, baseline]);
    Ok(out)
}
