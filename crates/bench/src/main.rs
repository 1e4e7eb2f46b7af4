//! `renkei-bench`: starts renkei in this process on a real TCP port, drives it over
//! HTTP with a keep-alive client pool, and prints operations, throughput and latency
//! percentiles per scenario next to baselines measured in the same run (a bare axum
//! server for the HTTP and JSON cost; raw rusqlite for what a naive store costs), so
//! the ratios stay meaningful on any machine. It asserts nothing about time.

mod data;
mod error;
mod load;
mod raw_sqlite;
mod report;
mod scenarios;
mod stats;
mod targets;

use clap::{Parser, ValueEnum};
use error::BenchError;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// POST /entities, one new entity per request.
    Create,
    /// POST /entityOperations/upsert, 100 entities per request.
    BatchUpsert,
    /// Attribute query and geo-query over the loaded entities.
    Query,
    /// GET /entities/{id} of random ids.
    Retrieve,
    /// Every scenario above, in that order.
    All,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
}

/// Benchmarks renkei over real HTTP against in-process baselines.
#[derive(Debug, Parser)]
#[command(name = "renkei-bench", version)]
struct Cli {
    /// Scenarios to run (repeat or separate with commas).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    scenario: Vec<Scenario>,

    /// Storage backend of the renkei under test.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendArg,

    /// PostgreSQL server for `--backend postgres`; a throwaway database is created on
    /// it and dropped at the end.
    #[arg(long, default_value = store_postgres::testing::DEFAULT_TEST_URL)]
    pg_url: String,

    /// Operations per measurement (and entities loaded for query/retrieve).
    #[arg(long, default_value_t = 20_000, conflicts_with = "quick")]
    requests: usize,

    /// Requests per query measurement (default: requests / 20, at least 1); the
    /// entities queried are still `--requests` many. Queries answer up to 100
    /// entities each and cost far more than a write, so the same count would make a
    /// run take hours.
    #[arg(long)]
    query_requests: Option<usize>,

    /// Parallel workers (client tasks, or threads for the raw SQLite baseline).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,

    /// A short run (2000 requests) for smoke checks.
    #[arg(long)]
    quick: bool,

    /// Also write the results as JSON to this file (e.g. bench-results/run.json).
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("renkei-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), BenchError> {
    let requests = if cli.quick { 2000 } else { cli.requests };
    if requests == 0 {
        return Err(BenchError::Usage("--requests must be at least 1".into()));
    }
    if cli.concurrency == 0 {
        return Err(BenchError::Usage("--concurrency must be at least 1".into()));
    }
    let backend = match cli.backend {
        BackendArg::Sqlite => targets::Backend::Sqlite,
        BackendArg::Postgres => targets::Backend::Postgres {
            server_url: cli.pg_url.clone(),
        },
    };
    let query_requests = cli.query_requests.unwrap_or((requests / 20).max(1));
    if query_requests == 0 {
        return Err(BenchError::Usage(
            "--query-requests must be at least 1".into(),
        ));
    }
    let settings = scenarios::Settings {
        requests,
        query_requests,
        concurrency: cli.concurrency,
        client: load::client(cli.concurrency)?,
        backend,
    };
    let all = cli.scenario.contains(&Scenario::All);
    let wanted = |s: Scenario| all || cli.scenario.contains(&s);

    let mut report = report::Report {
        backend: settings.backend.name().to_owned(),
        requests,
        query_requests,
        concurrency: cli.concurrency,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        measurements: Vec::new(),
        ratios: Vec::new(),
        notes: Vec::new(),
        peak_rss_kib: None,
    };
    for scenario in [
        Scenario::Create,
        Scenario::BatchUpsert,
        Scenario::Query,
        Scenario::Retrieve,
    ] {
        if !wanted(scenario) {
            continue;
        }
        eprintln!("running {scenario:?} …");
        let outcome = match scenario {
            Scenario::Create => scenarios::create(&settings).await?,
            Scenario::BatchUpsert => scenarios::batch_upsert(&settings).await?,
            Scenario::Query => scenarios::query(&settings).await?,
            Scenario::Retrieve => scenarios::retrieve(&settings).await?,
            // Not in the list iterated over; it only widens `wanted`.
            Scenario::All => scenarios::Outcome::default(),
        };
        report.measurements.extend(outcome.measurements);
        report.ratios.extend(outcome.ratios);
        report.notes.extend(outcome.notes);
    }
    report.peak_rss_kib = report::peak_rss_kib();
    print!("{}", report.to_table());
    if let Some(path) = &cli.json {
        report.write_json(path)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}
