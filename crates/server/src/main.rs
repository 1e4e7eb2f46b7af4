//! `renkei`: the command line of the platform. `renkei serve` starts every face on one
//! port (1026 unless configured); `renkei migrate` brings the database schema up to
//! date; `renkei version` prints the version; `renkei catalog import <folder>` loads a
//! folder of files into the open data catalog.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use server::cli;
use server::config::Config;
use server::storage::Backend;
use std::path::PathBuf;

/// mimalloc, with the settings `allocator::configure` applies first thing in `main`.
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

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
    /// Register, suspend, resume and list tenants (local governments).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Create the platform administrator (the password is read from the terminal or
    /// standard input; there is never a default one).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create and revoke API keys for machine clients.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Keys for the field-level encryption of personal data.
    #[command(subcommand, name = "encryption-key")]
    EncryptionKey(EncryptionKeyCommand),
    /// The open data catalog from the console.
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Load every CSV, TSV, XLSX and XLS file of a folder into datasets of one
    /// organisation (one dataset per file, named after it; updated when it exists),
    /// with a progress bar and a summary table at the end.
    Import {
        folder: PathBuf,
        /// The organisation's 6-digit 全国地方公共団体コード (a registered tenant).
        #[arg(long)]
        organization: String,
        /// Put before every dataset name.
        #[arg(long)]
        dataset_prefix: Option<String>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Register a local government by its 6-digit 全国地方公共団体コード.
    Add {
        code: String,
        /// An entity type anyone may read (repeatable): an IRI, or a term of NGSI-LD's
        /// default vocabulary.
        #[arg(long = "public-type")]
        public_types: Vec<String>,
    },
    /// Suspend a tenant: its data stays, nobody but the platform administrator reaches it.
    Suspend { code: String },
    /// Lift a suspension.
    Resume { code: String },
    /// List the registered tenants.
    List,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a platform administrator.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key; prints the key alone on standard output.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        role: identity::Role,
        /// Comma-separated scopes (default: all the role can use).
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<identity::Scope>>,
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke an API key by its id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of the whole audit log; exit status 1 if it is broken.
    Verify,
}

#[derive(Subcommand)]
enum EncryptionKeyCommand {
    /// Print a new key entry `id:base64` for RENKEI_ENCRYPTION_KEYS (put it first to
    /// make it current; keep old ones until every field is resealed).
    Generate {
        #[arg(long)]
        id: String,
    },
}

fn main() -> anyhow::Result<()> {
    allocator::configure();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
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
        Command::Tenant(TenantCommand::Add { code, public_types }) => {
            cli::tenant_add(&config, &code, &public_types).await
        }
        Command::Tenant(TenantCommand::Suspend { code }) => {
            cli::tenant_set_suspended(&config, &code, true).await
        }
        Command::Tenant(TenantCommand::Resume { code }) => {
            cli::tenant_set_suspended(&config, &code, false).await
        }
        Command::Tenant(TenantCommand::List) => cli::tenant_list(&config).await,
        Command::Admin(AdminCommand::Create {
            username,
            display_name,
        }) => cli::admin_create(&config, &username, display_name.as_deref()).await,
        Command::Key(KeyCommand::Create {
            tenant,
            role,
            scopes,
            label,
            expires_in_days,
        }) => cli::key_create(&config, &tenant, role, scopes, &label, expires_in_days).await,
        Command::Key(KeyCommand::Revoke { id }) => cli::key_revoke(&config, &id).await,
        Command::Audit(AuditCommand::Verify) => cli::audit_verify(&config).await,
        Command::EncryptionKey(EncryptionKeyCommand::Generate { id }) => {
            cli::encryption_key_generate(&id)
        }
        Command::Catalog(CatalogCommand::Import {
            folder,
            organization,
            dataset_prefix,
        }) => {
            let request = server::catalog_cli::ImportRequest {
                folder,
                organization,
                dataset_prefix,
            };
            server::catalog_cli::import_command(&config, &request).await
        }
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let backend = Backend::from_url(&config.database_url)?;
    let stores = backend.open().await?;
    let listen = config.listen;
    let state = server::AppState::new(stores, config.clone())?;
    if config.allow_anonymous_writes {
        for _ in 0..3 {
            tracing::warn!("RENKEI_ALLOW_ANONYMOUS_WRITES is on: ANYONE can read and write the broker of EVERY tenant without a key. For local development and conformance runs only; never in production.");
        }
    }
    if demo {
        let summary = server::demo::load(&state)
            .await
            .context("loading the demo data")?;
        tracing::info!(
            tenants = summary.tenants,
            shelters = summary.shelters,
            procedures = summary.procedures,
            "demo data loaded"
        );
    }
    // Dispatching and delivering notifications for as long as the server runs.
    let _background = server::delivery::start(&state)?;
    // Harvesting the catalog's harvest sources when they are due.
    let _harvesting = server::ckan::harvest::start_scheduler(&state);
    // Mail and webhooks of applications, payment reconciliation, retention.
    let _applications = server::applications::worker::start(&state)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let service = server::service(state);
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = server::tls::load_tls_config(cert, key)?;
            tracing::info!(%listen, database = %redact(&config.database_url), "renkei is serving HTTPS");
            server::tls::serve_tls(listener, tls, service, shutdown_signal()).await?;
        }
        _ => {
            tracing::info!(%listen, database = %redact(&config.database_url), "renkei is serving");
            // With the peer address, so that rate limits count per client.
            axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                    std::net::SocketAddr,
                >(service),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        }
    }
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
