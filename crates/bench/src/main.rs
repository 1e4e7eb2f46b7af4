//! `renkei-bench`: starts renkei in this process on a real TCP port, drives it over
//! HTTP with a keep-alive client pool, and prints operations, throughput and latency
//! percentiles per scenario next to baselines measured in the same run (a bare axum
//! server for the HTTP and JSON cost; raw rusqlite for what a naive store costs), so
//! the ratios stay meaningful on any machine, and ends with the targets of issue 2,
//! each marked met or not met, and those of issue 4 for notifications; the catalog
//! scenarios (issue 5) compare ingest with the `csv` crate and the CKAN API with the
//! bare endpoint and the datastore's own store. It asserts nothing about time: the exit code says only
//! whether the run itself worked.

mod catalog;
mod data;
mod error;
mod goals;
mod load;
mod notify;
mod raw_sqlite;
mod report;
mod scenarios;
mod stats;
mod targets;
mod temporal;

use clap::{Parser, ValueEnum};
use error::BenchError;
use std::path::PathBuf;
use std::process::ExitCode;

/// The allocator the `renkei` binary ships with, with its settings (see `allocator`),
/// so that the renkei measured here allocates as the one deployed does; the
/// in-process baselines share it, which keeps the ratios fair.
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// POST /entities, one new entity per request.
    Create,
    /// POST /entityOperations/upsert, 1000 entities per request.
    BatchUpsert,
    /// Attribute query and 1 km geo-query over `--entities` loaded shelters.
    Query,
    /// GET /entities/{id} of random ids among the same loaded shelters.
    Retrieve,
    /// Resident memory after loading `--memory-entities` shelters (not in `all`).
    Memory,
    /// Notifications of `--subscriptions` subscriptions under `--updates` PATCHes,
    /// delivered to an HTTP receiver in this process (issue 4).
    Notify,
    /// Aggregated and lastN retrieval of one attribute with `--instances` history
    /// instances (issue 4).
    Temporal,
    /// A `--rows`-row, 39-column Shift_JIS 指定緊急避難場所 file: the `csv` crate,
    /// `catalog::ingest` and the HTTP upload into the datastore (issue 5; not in `all`).
    CatalogIngest,
    /// package_search over `--datasets` datasets (issue 5; not in `all`).
    CatalogSearch,
    /// datastore_search with two filters over a `--table-rows`-row table (issue 5;
    /// not in `all`).
    CatalogDatastore,
    /// catalog-ingest, catalog-search and catalog-datastore.
    Catalog,
    /// create, batch-upsert, query, retrieve, notify and temporal (not memory: it takes
    /// minutes; not the catalog scenarios).
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

    /// Requests of `create` and `retrieve` [default: 20000; --quick: 2000].
    #[arg(long)]
    requests: Option<usize>,

    /// Requests per query measurement [default: 10000; --quick: 1000].
    #[arg(long)]
    query_requests: Option<usize>,

    /// Shelters loaded (once) for `query` and `retrieve`, and sent by `batch-upsert`
    /// [default: 100000; --quick: 5000].
    #[arg(long)]
    entities: Option<usize>,

    /// Shelters the `memory` scenario loads [default: 1000000; --quick: 20000].
    #[arg(long)]
    memory_entities: Option<usize>,

    /// Subscriptions of `notify`, all on the default tenant [default: 1000; --quick: 100].
    #[arg(long)]
    subscriptions: Option<usize>,

    /// Subscriptions watching each entity in `notify`, so that every update is
    /// notified this many times; `--subscriptions` must be a multiple of it.
    #[arg(long, default_value_t = 1)]
    fanout: usize,

    /// Attribute updates (PATCH) `notify` sends, round-robin over its entities
    /// [default: 20000; --quick: 2000].
    #[arg(long)]
    updates: Option<usize>,

    /// Updates per second `notify` paces its stream at (0: as fast as the workers
    /// go, so that delays include whatever backlog builds up).
    #[arg(long, default_value_t = 0.0)]
    update_rate: f64,

    /// History instances `temporal` loads [default: 100000; --quick: 10000].
    #[arg(long)]
    instances: Option<usize>,

    /// Data rows of the file `catalog-ingest` generates [default: 1000000; --quick: 100000].
    #[arg(long)]
    rows: Option<usize>,

    /// Rows `catalog-ingest` uploads through `resource_create` (a prefix of the
    /// `--rows` file, and a tenth of it) [default: 20000; --quick: 5000]: the upload
    /// also publishes every row into the broker, which costs far more than the rest.
    #[arg(long)]
    upload_rows: Option<usize>,

    /// Datasets `catalog-search` creates [default: 10000; --quick: 1000].
    #[arg(long)]
    datasets: Option<usize>,

    /// Rows of the `catalog-datastore` table [default: 1000000; --quick: 100000].
    #[arg(long)]
    table_rows: Option<usize>,

    /// Parallel workers (client tasks, or threads for the raw SQLite baselines).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,

    /// A short run for smoke checks: smaller defaults for every count above (an
    /// option given explicitly still wins).
    #[arg(long)]
    quick: bool,

    /// Also write the results as JSON to this file (e.g. bench-results/run.json).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Before the runtime allocates anything, as `renkei` does.
    allocator::configure();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(bench()),
        Err(e) => {
            eprintln!("renkei-bench: starting the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bench() -> ExitCode {
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

/// An explicit option, else the `--quick` value, else the full-size default; at least 1.
fn count(
    explicit: Option<usize>,
    quick: bool,
    small: usize,
    full: usize,
    name: &str,
) -> Result<usize, BenchError> {
    let n = explicit.unwrap_or(if quick { small } else { full });
    if n == 0 {
        return Err(BenchError::Usage(format!("--{name} must be at least 1")));
    }
    Ok(n)
}

async fn run(cli: Cli) -> Result<(), BenchError> {
    let q = cli.quick;
    let requests = count(cli.requests, q, 2_000, 20_000, "requests")?;
    let query_requests = count(cli.query_requests, q, 1_000, 10_000, "query-requests")?;
    let entities = count(cli.entities, q, 5_000, 100_000, "entities")?;
    let memory_entities = count(cli.memory_entities, q, 20_000, 1_000_000, "memory-entities")?;
    let notify_plan = notify::Plan::new(
        count(cli.subscriptions, q, 100, 1_000, "subscriptions")?,
        cli.fanout,
        count(cli.updates, q, 2_000, 20_000, "updates")?,
    )?;
    if !(cli.update_rate >= 0.0 && cli.update_rate.is_finite()) {
        return Err(BenchError::Usage("--update-rate must be 0 or more".into()));
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
    let settings = scenarios::Settings {
        requests,
        query_requests,
        entities,
        memory_entities,
        concurrency: cli.concurrency,
        client: load::client(cli.concurrency)?,
        backend,
    };
    let all = cli.scenario.contains(&Scenario::All);
    let catalog = cli.scenario.contains(&Scenario::Catalog);
    let catalog_scenarios = [
        Scenario::CatalogIngest,
        Scenario::CatalogSearch,
        Scenario::CatalogDatastore,
    ];
    // `memory` and the catalog's only when named: they load a million entities or rows.
    let wanted = |s: Scenario| {
        (all && s != Scenario::Memory && !catalog_scenarios.contains(&s))
            || (catalog && catalog_scenarios.contains(&s))
            || cli.scenario.contains(&s)
    };

    let mut report = report::Report {
        backend: settings.backend.name().to_owned(),
        requests,
        query_requests,
        entities,
        concurrency: cli.concurrency,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        measurements: Vec::new(),
        ratios: Vec::new(),
        notes: Vec::new(),
        goals: Vec::new(),
        memory: None,
        peak_rss_kib: None,
    };
    let (query, retrieve) = (wanted(Scenario::Query), wanted(Scenario::Retrieve));
    let mut outcomes = Vec::new();
    // First, so that memory the allocator kept from other scenarios does not inflate
    // its readings.
    if wanted(Scenario::Memory) {
        eprintln!("running memory ({memory_entities} shelters) …");
        outcomes.push(scenarios::memory(&settings).await?);
    }
    // Before the others, so that its memory readings start from a small process.
    if wanted(Scenario::CatalogIngest) {
        let rows = count(cli.rows, q, 100_000, 1_000_000, "rows")?;
        let upload_rows = count(cli.upload_rows, q, 5_000, 20_000, "upload-rows")?;
        eprintln!("running catalog-ingest ({rows} rows, {upload_rows} uploaded) …");
        outcomes.push(catalog::ingest(&settings, rows, upload_rows).await?);
    }
    if wanted(Scenario::CatalogSearch) {
        let datasets = count(cli.datasets, q, 1_000, 10_000, "datasets")?;
        eprintln!("running catalog-search ({datasets} datasets) …");
        outcomes.push(catalog::search(&settings, datasets).await?);
    }
    if wanted(Scenario::CatalogDatastore) {
        let rows = count(cli.table_rows, q, 100_000, 1_000_000, "table-rows")?;
        eprintln!("running catalog-datastore ({rows} rows) …");
        outcomes.push(catalog::datastore(&settings, rows).await?);
    }
    if wanted(Scenario::Create) {
        eprintln!("running create …");
        outcomes.push(scenarios::create(&settings).await?);
    }
    if wanted(Scenario::BatchUpsert) {
        eprintln!("running batch-upsert …");
        outcomes.push(scenarios::batch_upsert(&settings).await?);
    }
    if query || retrieve {
        // One load of `--entities` serves both.
        eprintln!("loading {entities} shelters for query/retrieve …");
        outcomes.push(scenarios::read(&settings, query, retrieve).await?);
    }
    if wanted(Scenario::Notify) {
        eprintln!(
            "running notify ({} subscriptions, {} updates) …",
            notify_plan.subscriptions, notify_plan.updates
        );
        outcomes.push(notify::notify(&settings, notify_plan, cli.update_rate).await?);
    }
    if wanted(Scenario::Temporal) {
        let instances = count(cli.instances, q, 10_000, 100_000, "instances")?;
        eprintln!("running temporal ({instances} instances) …");
        outcomes.push(temporal::temporal(&settings, instances, query_requests).await?);
    }
    for outcome in outcomes {
        report.measurements.extend(outcome.measurements);
        report.ratios.extend(outcome.ratios);
        report.goals.extend(outcome.goals);
        report.notes.extend(outcome.notes);
        if outcome.memory.is_some() {
            report.memory = outcome.memory;
        }
    }
    report.peak_rss_kib = report::peak_rss_kib();
    print!("{}", report.to_table());
    if let Some(path) = &cli.json {
        report.write_json(path)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}
