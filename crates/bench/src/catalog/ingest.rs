//! `catalog-ingest`: a generated `--rows`-row, 39-column 指定緊急避難場所 file in
//! Shift_JIS (and one a tenth its size, to show memory does not follow file size),
//! measured three ways in the same run:
//! - `csv-raw` (the baseline of the target): the `csv` crate reading every record of
//!   the Shift_JIS bytes as `ByteRecord`s, no decoding, no checks;
//! - `csv-decode` (for reference): the same, and every field decoded from Shift_JIS
//!   with `encoding_rs`, the least any loader has to do;
//! - `ingest`: `catalog::ingest::ingest` (encoding sniffing, decoding, header
//!   recognition, normalisation, validation and typing of every cell, the report)
//!   into a sink that drops the batches;
//! - `upload`: the whole path, `resource_create` multipart to the running renkei,
//!   spooled, ingested and written into the SQLite (or PostgreSQL) datastore.
//!
//! The first three are measured in turn, three rounds, and the median of each counts.
//! The peak resident set during each ingest is sampled (every 5 ms); the highest of
//! the rounds is compared between the two file sizes.

use super::file::{self, Written};
use super::{action_result, call, start, CatalogRenkei};
use crate::error::BenchError;
use crate::goals::Goal;
use crate::report::mib;
use crate::scenarios::{seconds, Outcome, Settings};
use crate::stats::{Measurement, Ratio};
use catalog::ingest::{Format, IngestReport, Options, Plan, Rows, Sink};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCENARIO: &str = "catalog-ingest";
const ORG: &str = "222127";

/// Keeps nothing: what ingest costs without a store behind it.
struct DropSink {
    rows: u64,
}

impl Sink for DropSink {
    type Error = std::convert::Infallible;
    fn plan(&mut self, _plan: &Plan) -> Result<(), Self::Error> {
        Ok(())
    }
    fn batch(&mut self, rows: &mut Rows) -> Result<(), Self::Error> {
        self.rows += rows.len() as u64;
        Ok(())
    }
}

/// Samples the process's resident set while it lives; [`RssPeak::stop`] gives the
/// highest reading above the one taken at the start, in KiB.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    start: u64,
    thread: std::thread::JoinHandle<()>,
}

fn rss_now() -> u64 {
    super::memory_kib().1.unwrap_or(0)
}

impl RssPeak {
    fn start() -> RssPeak {
        let start = rss_now();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(start));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_now(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        RssPeak {
            stop,
            peak,
            start,
            thread,
        }
    }

    /// (RSS at the start, growth of the peak above it), KiB.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let peak = self.peak.load(Ordering::Relaxed).max(rss_now());
        (self.start, peak.saturating_sub(self.start))
    }
}

fn one_run(target: &str, elapsed: Duration, rows: usize) -> Measurement {
    Measurement::from_durations(SCENARIO, target, vec![elapsed], elapsed, rows, "row")
}

fn csv_reader(path: &Path) -> Result<csv::Reader<std::fs::File>, BenchError> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_path(path)
        .map_err(|e| BenchError::Startup {
            what: "csv baseline",
            detail: e.to_string(),
        })
}

/// Reads every record as bytes (and with `decode`, decodes every field); returns
/// the data rows read (the header not counted) and a checksum that keeps the
/// work from being optimised away.
fn csv_baseline(path: &Path, decode: bool) -> Result<(usize, usize), BenchError> {
    let mut reader = csv_reader(path)?;
    let mut record = csv::ByteRecord::new();
    let (mut records, mut checksum) = (0usize, 0usize);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(BenchError::Startup {
                    what: "csv baseline",
                    detail: e.to_string(),
                })
            }
        }
        records += 1;
        if decode {
            for field in &record {
                let (text, _) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(field);
                checksum = checksum.wrapping_add(text.len());
            }
        } else {
            checksum = checksum.wrapping_add(record.len());
        }
    }
    Ok((records.saturating_sub(1), checksum))
}

/// `catalog::ingest` into the dropping sink, on a blocking thread.
async fn ingest_file(path: PathBuf) -> Result<(Duration, IngestReport), BenchError> {
    tokio::task::spawn_blocking(move || {
        let options = Options {
            max_bytes: u64::MAX,
            ..Options::default()
        };
        let mut sink = DropSink { rows: 0 };
        let started = Instant::now();
        let report =
            catalog::ingest::ingest(&path, Format::Csv, &options, &mut sink).map_err(|e| {
                BenchError::Startup {
                    what: "catalog ingest",
                    detail: e.to_string(),
                }
            })?;
        Ok((started.elapsed(), report))
    })
    .await
    .map_err(|e| BenchError::Worker(format!("catalog ingest: {e}")))?
}

/// What an upload through `resource_create` gave.
struct Uploaded {
    elapsed: Duration,
    rows: u64,
    errors: u64,
    warnings: u64,
    active: bool,
    /// What the publication into the broker said (status and entities written).
    publication: String,
}

/// Creates a dataset and uploads `path` as its resource, the file streamed from
/// disk; timed from the first byte sent to the answer (after the datastore load).
async fn upload(renkei: &CatalogRenkei, path: &Path, name: &str) -> Result<Uploaded, BenchError> {
    // Its own client: a million-row upload takes longer than the run's timeout.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|source| BenchError::Http {
            what: "building the upload client".into(),
            source,
        })?;
    let package = call(
        renkei,
        &client,
        "package_create",
        json!({"name": name, "title": "指定緊急避難場所一覧（ベンチマーク）", "owner_org": ORG}),
    )
    .await?;
    let io = |source| BenchError::Io {
        what: "opening the generated file",
        path: path.to_path_buf(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let length = file.metadata().await.map_err(io)?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), length)
            .file_name("220001_evacuation_space.csv");
    let form = reqwest::multipart::Form::new()
        .text(
            "package_id",
            package["id"].as_str().unwrap_or_default().to_owned(),
        )
        .text("name", "指定緊急避難場所一覧")
        .text("format", "CSV")
        .part("upload", part);
    let url = format!("{}/api/3/action/resource_create", renkei.base);
    let started = Instant::now();
    let response = client
        .post(&url)
        .header("authorization", &renkei.key)
        .multipart(form)
        .send()
        .await
        .map_err(|source| BenchError::Http {
            what: url.clone(),
            source,
        })?;
    let resource = action_result(&url, response).await?;
    let elapsed = started.elapsed();
    let report = &resource["validation"]["report"];
    Ok(Uploaded {
        elapsed,
        rows: report["rows"].as_u64().unwrap_or(0),
        errors: report["errors"].as_u64().unwrap_or(0),
        warnings: report["warnings"].as_u64().unwrap_or(0),
        active: resource["datastore_active"].as_bool().unwrap_or(false),
        publication: {
            let p = &resource["validation"]["publication"];
            format!(
                "{} {} entities of type {}",
                p["status"].as_str().unwrap_or("unknown"),
                p["published"].as_u64().unwrap_or(0),
                p["type"].as_str().unwrap_or("-")
            )
        },
    })
}

/// The readings of one file size.
struct SizeRun {
    written: Written,
    raw: Measurement,
    decode: Measurement,
    ingest: Measurement,
    report: IngestReport,
    /// (RSS before, peak growth during) the ingest, KiB.
    ingest_rss: (u64, u64),
}

async fn measure_size(path: PathBuf, rows: usize, label: &str) -> Result<SizeRun, BenchError> {
    let started = Instant::now();
    let target = path.clone();
    let written = tokio::task::spawn_blocking(move || file::write_shelter_file(&target, rows))
        .await
        .map_err(|e| BenchError::Worker(format!("generating the file: {e}")))??;
    eprintln!(
        "  {label}: generated {} rows × {} columns, {:.1} MiB Shift_JIS in {}",
        written.rows,
        written.columns,
        written.bytes as f64 / (1024.0 * 1024.0),
        seconds(started.elapsed())
    );
    // csv-raw, csv-decode and ingest, in turn, every round.
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut last_report = None;
    let mut ingest_rss: Option<(u64, u64)> = None;
    for _ in 0..ROUNDS {
        for (slot, decode) in [(0, false), (1, true)] {
            let target = path.clone();
            let started = Instant::now();
            let (read, _) = tokio::task::spawn_blocking(move || csv_baseline(&target, decode))
                .await
                .map_err(|e| BenchError::Worker(format!("csv baseline: {e}")))??;
            if read != rows {
                return Err(BenchError::Startup {
                    what: "csv baseline",
                    detail: format!("read {read} rows of {rows}"),
                });
            }
            times[slot].push(started.elapsed());
        }
        let sampler = RssPeak::start();
        let (elapsed, report) = ingest_file(path.clone()).await?;
        let (before, growth) = sampler.stop();
        if report.rows != rows as u64 {
            return Err(BenchError::Startup {
                what: "catalog ingest",
                detail: format!("loaded {} rows of {rows}", report.rows),
            });
        }
        // The highest growth of any round: memory is judged by its worst.
        ingest_rss = Some(ingest_rss.map_or((before, growth), |(b, g)| (b, g.max(growth))));
        times[2].push(elapsed);
        last_report = Some(report);
    }
    let [raw, decode, ingest] = times.map(median);
    let (Some(report), Some(ingest_rss)) = (last_report, ingest_rss) else {
        return Err(BenchError::Worker("no ingest round ran".into()));
    };
    Ok(SizeRun {
        written,
        raw: one_run(&format!("csv-raw-{label}"), raw, rows),
        decode: one_run(&format!("csv-decode-{label}"), decode, rows),
        ingest: one_run(&format!("ingest-{label}"), ingest, rows),
        report,
        ingest_rss,
    })
}

/// Rounds of each measurement, taken in turn, of which the median counts: one run of a
/// few seconds on a shared 2-core machine varies by ±15 %, more than most changes
/// worth measuring.
const ROUNDS: usize = 3;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// `catalog-ingest` with a `rows`-row file (and a tenth of it for memory).
pub async fn ingest(s: &Settings, rows: usize, upload_rows: usize) -> Result<Outcome, BenchError> {
    let dir = tempfile::tempdir().map_err(|e| BenchError::Startup {
        what: "catalog ingest",
        detail: e.to_string(),
    })?;
    let small_rows = (rows / 10).max(1);
    let small = measure_size(dir.path().join("tenth.csv"), small_rows, "tenth").await?;
    let full = measure_size(dir.path().join("full.csv"), rows, "full").await?;

    // The upload files are prefixes of the full one (rows are a function of their
    // number), generated apart when smaller.
    let upload_rows = upload_rows.min(rows);
    let upload_small_rows = (upload_rows / 10).max(1);
    let mut upload_files = Vec::new();
    for (n, name) in [
        (upload_small_rows, "upload-tenth.csv"),
        (upload_rows, "upload.csv"),
    ] {
        let path = dir.path().join(name);
        match n {
            n if n == rows => upload_files.push(dir.path().join("full.csv")),
            n if n == small_rows => upload_files.push(dir.path().join("tenth.csv")),
            n => {
                let target = path.clone();
                tokio::task::spawn_blocking(move || file::write_shelter_file(&target, n))
                    .await
                    .map_err(|e| BenchError::Worker(format!("generating the file: {e}")))??;
                upload_files.push(path);
            }
        }
    }
    let renkei = start(&s.backend, &[ORG]).await?;
    let sampler = RssPeak::start();
    let first = upload(&renkei, &upload_files[0], "bench-shelters-tenth").await?;
    let first_rss = sampler.stop();
    let sampler = RssPeak::start();
    let uploaded = upload(&renkei, &upload_files[1], "bench-shelters").await?;
    let upload_rss = sampler.stop();
    drop(renkei);
    for (done, expected) in [(&first, upload_small_rows), (&uploaded, upload_rows)] {
        if !done.active || done.rows != expected as u64 {
            return Err(BenchError::Startup {
                what: "catalog upload",
                detail: format!(
                    "the datastore holds {} rows of {expected} (active: {})",
                    done.rows, done.active
                ),
            });
        }
    }
    let up_small = one_run(
        &format!("upload-{upload_small_rows}"),
        first.elapsed,
        upload_small_rows,
    );
    let up = one_run(
        &format!("upload-{upload_rows}"),
        uploaded.elapsed,
        upload_rows,
    );

    let mut out = Outcome::default();
    let vs_raw = Ratio::between(&full.ingest, &full.raw);
    let growth = |run: &SizeRun| mib(run.ingest_rss.1);
    let extra_bytes_mib =
        (full.written.bytes.saturating_sub(small.written.bytes)) as f64 / (1024.0 * 1024.0);
    let extra_rss = growth(&full) - growth(&small);
    out.goals.extend([
        Goal::at_least(
            "catalog-ingest ingest throughput",
            full.ingest.throughput,
            200_000.0,
            "row/s",
        ),
        Goal::at_least(
            "catalog-ingest ingest/csv-raw throughput",
            vs_raw.throughput_ratio,
            0.3,
            "x",
        ),
        Goal::at_most(
            "catalog-ingest extra peak RSS, full vs tenth file",
            extra_rss,
            0.05 * extra_bytes_mib,
            "MiB",
        ),
    ]);
    let schema = full.report.schema.as_ref().map_or("none", |s| s.id);
    out.notes.push(format!(
        "catalog-ingest: {} rows × {} columns of {} in Shift_JIS, {:.1} MiB (tenth: {} rows, {:.1} MiB); \
         recognised as {schema}; {} errors, {} warnings; medians of {ROUNDS} rounds taken in \
         turn; csv-raw = csv::ByteRecord over the Shift_JIS bytes (no decoding), csv-decode = \
         the same plus encoding_rs decoding of every field; ingest = catalog::ingest::ingest \
         (sniff, decode, recognise, normalise, validate, type) into a sink that drops the \
         batches; upload = package_create + resource_create \
         multipart of the first --upload-rows rows (and a tenth of them) into the {} datastore",
        full.written.rows,
        full.written.columns,
        file::SHELTER_SCHEMA,
        full.written.bytes as f64 / (1024.0 * 1024.0),
        small.written.rows,
        small.written.bytes as f64 / (1024.0 * 1024.0),
        full.report.errors,
        full.report.warnings,
        s.backend.name(),
    ));
    let mut codes: Vec<_> = full.report.by_code.iter().collect();
    codes.sort_by_key(|(_, counts)| std::cmp::Reverse(counts.total()));
    let codes: Vec<String> = codes
        .iter()
        .take(6)
        .map(|(code, c)| format!("{code} {}e/{}w", c.errors, c.warnings))
        .collect();
    out.notes.push(format!(
        "catalog-ingest issues by code (full file): {}",
        codes.join(", ")
    ));
    out.notes.push(format!(
        "catalog-ingest memory: peak RSS growth during ingest {:.1} MiB for the tenth file, \
         {:.1} MiB for the full file (RSS before: {:.1} / {:.1} MiB); during the uploads \
         (server and client in this process) {:.1} MiB for {upload_small_rows} rows, {:.1} MiB \
         for {upload_rows}; target: the full file adds at most 5% \
         of its extra {:.1} MiB",
        growth(&small),
        growth(&full),
        mib(small.ingest_rss.0),
        mib(full.ingest_rss.0),
        mib(first_rss.1),
        mib(upload_rss.1),
        extra_bytes_mib,
    ));
    out.notes.push(format!(
        "catalog-ingest upload: {} rows in the datastore, report {} errors / {} warnings, {}; \
         the upload's answer comes after the rows are also published into the broker \
         (publication: {})",
        uploaded.rows,
        uploaded.errors,
        uploaded.warnings,
        seconds(uploaded.elapsed),
        uploaded.publication
    ));
    out.ratios.extend([
        vs_raw,
        Ratio::between(&full.ingest, &full.decode),
        Ratio::between(&up, &full.raw),
        Ratio::between(&small.ingest, &small.raw),
    ]);
    out.measurements.extend([
        full.raw,
        full.decode,
        full.ingest,
        up,
        small.raw,
        small.decode,
        small.ingest,
        up_small,
    ]);
    Ok(out)
}
