//! `renkei`: the command line of the platform. `renkei serve` starts every face on one
//! port (1026 unless configured); `renkei migrate` brings the database schema up to
//! date; `renkei version` prints the version.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use server::config::Config;
use server::storage::Backend;
use std::path::PathBuf;

/// mimalloc rather than the system allocator: a request allocates many small JSON
/// values, and glibc's malloc was a fifth of the CPU time under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "renkei",
    about = "県・市町村共同利用のデータ連携基盤 — data platform for a prefecture and its municipalities"
)]
struct Cli {
    /// A TOML configuration file; RENKEI_* environment variables override it.
    #[arg(long, global = true, env = "RENKEI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every face on one port (the default command).
    Serve {
        /// Load the demo data (静岡県's local governments, 焼津市's evacuation sites).
        #[arg(long)]
        demo: bool,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the version.
    Version,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Version => {
            println!("renkei {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Migrate => {
            Backend::from_url(&config.database_url)?.migrate().await?;
            tracing::info!(database = %redact(&config.database_url), "schema is up to date");
            Ok(())
        }
        Command::Serve { demo } => serve(config, demo).await,
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let backend = Backend::from_url(&config.database_url)?;
    let store = backend.open().await?;
    let listen = config.listen;
    let state = server::AppState::new(store, config.clone())?;
    if demo {
        let summary = server::demo::load(&state.broker)
            .await
            .context("loading the demo data")?;
        tracing::info!(
            tenants = summary.tenants,
            shelters = summary.shelters,
            "demo data loaded"
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, database = %redact(&config.database_url), "renkei is serving");
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(server::service(state)),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RENKEI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact("postgres://renkei:s3cret@db/renkei"),
            "postgres://renkei:***@db/renkei"
        );
        assert_eq!(
            redact("sqlite://./data/renkei.db"),
            "sqlite://./data/renkei.db"
        );
    }
}
