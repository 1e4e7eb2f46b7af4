//! Configuration: defaults, then an optional TOML file, then `RENKEI_*` environment
//! variables, each overriding the one before. With nothing set, renkei keeps its data
//! in SQLite under `./data/` and listens on port 1026 (the NGSI-LD convention).

use anyhow::{bail, Context as _};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://PATH` (default `sqlite://./data/renkei.db`) or `postgres://…`.
    pub database_url: String,
    /// The URL clients reach renkei at; hosted contexts are served under it.
    pub public_url: String,
    /// A directory of preloaded contexts (`index.json` maps URL → file name).
    pub contexts_dir: Option<PathBuf>,
    /// Whether unknown remote contexts may be fetched over the network.
    pub remote_contexts: bool,
    pub context_fetch_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How many bytes of batch bodies are decoded and on their way to the store at
    /// once (`RENKEI_BATCH_BYTES_IN_FLIGHT`; 0: no bound); see [`crate::admission`].
    pub batch_bytes_in_flight: usize,
    /// `RENKEI_ALLOW_ANONYMOUS_WRITES`: anyone may read and write the broker of any
    /// tenant without a key. Local development and conformance runs only.
    pub allow_anonymous_writes: bool,
    /// PEM certificate chain and private key: when both are set, renkei serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How long a signed-in session lasts.
    pub session_lifetime: Duration,
    /// Sign-in through an OpenID Connect provider, when configured.
    pub oidc: Option<OidcConfig>,
    /// The keys of field-level encryption (`id:base64,…`, the first is current), from
    /// `RENKEI_ENCRYPTION_KEYS` or the file `RENKEI_ENCRYPTION_KEYS_FILE`.
    pub encryption_keys: Option<EncryptionKeys>,
    /// Sign-in attempts per IP and writes per key (`RENKEI_RATE_LIMIT_*`).
    pub rate_limits: crate::protect::RateLimitConfig,
    /// The most instances of one attribute series a temporal answer holds before it
    /// is cut into pages (`RENKEI_TEMPORAL_INSTANCE_LIMIT`).
    pub temporal_instance_limit: usize,
    /// Where uploaded catalog files are kept (`RENKEI_FILES_DIR`). Nodes sharing
    /// one PostgreSQL must share this directory too (a network volume), as CKAN
    /// nodes share their storage path.
    pub files_dir: PathBuf,
    /// The largest file a resource upload may be (`RENKEI_MAX_UPLOAD_BYTES`).
    pub max_upload_bytes: u64,
    /// The payment gateway of online applications (`RENKEI_PAYMENT_URL`,
    /// `RENKEI_PAYMENT_SECRET`); without it, fees cannot be paid online.
    pub payment: Option<PaymentConfig>,
    /// The mail relay for notifications to applicants (`RENKEI_SMTP_HOST`,
    /// `RENKEI_SMTP_PORT`, `RENKEI_SMTP_FROM`); without it, no mail is sent.
    pub smtp: Option<notifier::smtp::SmtpConfig>,
    /// How often the applications worker delivers notifications, reconciles payments
    /// and runs retention (`RENKEI_APPLICATIONS_TICK_MS`).
    pub applications_tick: Duration,
}

/// A generic redirect-and-webhook payment gateway.
#[derive(Clone)]
pub struct PaymentConfig {
    pub base_url: String,
    pub secret: String,
}

impl std::fmt::Debug for PaymentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentConfig")
            .field("base_url", &self.base_url)
            .field("secret", &"…")
            .finish()
    }
}

/// Where the field encryption keys come from (read when the server starts).
#[derive(Clone)]
pub enum EncryptionKeys {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for EncryptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncryptionKeys::Inline(_) => f.write_str("Inline(…)"),
            EncryptionKeys::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

/// The OpenID Connect provider renkei signs people in with.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL; its discovery document is read from
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// `client_secret_basic` when set…
    pub client_secret: Option<String>,
    /// …or `private_key_jwt` with this PEM key (PKCS#8, EC P-256 or RSA), as the
    /// Digital Agency's デジタル認証アプリ requires.
    pub private_key_file: Option<PathBuf>,
    pub key_id: Option<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("private_key_file", &self.private_key_file)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 1026)),
            database_url: "sqlite://./data/renkei.db".into(),
            public_url: "http://localhost:1026".into(),
            contexts_dir: None,
            remote_contexts: true,
            context_fetch_timeout: Duration::from_secs(5),
            max_body_bytes: 4 * 1024 * 1024,
            batch_bytes_in_flight: crate::admission::DEFAULT_BUDGET_BYTES,
            allow_anonymous_writes: false,
            tls_cert: None,
            tls_key: None,
            session_lifetime: Duration::from_secs(8 * 3600),
            oidc: None,
            encryption_keys: None,
            rate_limits: Default::default(),
            temporal_instance_limit: broker::temporal::DEFAULT_INSTANCE_LIMIT,
            files_dir: PathBuf::from("./data/files"),
            max_upload_bytes: 512 * 1024 * 1024,
            payment: None,
            smtp: None,
            applications_tick: Duration::from_secs(15),
        }
    }
}

/// The keys a configuration file may set; every one is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    public_url: Option<String>,
    contexts_dir: Option<PathBuf>,
    remote_contexts: Option<bool>,
    context_fetch_timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    batch_bytes_in_flight: Option<usize>,
    allow_anonymous_writes: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    session_lifetime_minutes: Option<u64>,
    oidc: Option<OidcConfig>,
    encryption_keys_file: Option<PathBuf>,
    temporal_instance_limit: Option<usize>,
    files_dir: Option<PathBuf>,
    max_upload_bytes: Option<u64>,
}

impl Config {
    /// Loads the configuration from `file` (if any) and the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading configuration file {}", path.display()))?;
            let parsed: FileConfig = toml::from_str(&text)
                .with_context(|| format!("parsing configuration file {}", path.display()))?;
            config.apply_file(parsed);
        }
        config.apply_env(|key| std::env::var(key).ok())?;
        Ok(config)
    }

    fn apply_file(&mut self, file: FileConfig) {
        if let Some(v) = file.listen {
            self.listen = v;
        }
        if let Some(v) = file.database_url {
            self.database_url = v;
        }
        if let Some(v) = file.public_url {
            self.public_url = v;
        }
        if let Some(v) = file.contexts_dir {
            self.contexts_dir = Some(v);
        }
        if let Some(v) = file.remote_contexts {
            self.remote_contexts = v;
        }
        if let Some(v) = file.context_fetch_timeout_ms {
            self.context_fetch_timeout = Duration::from_millis(v);
        }
        if let Some(v) = file.max_body_bytes {
            self.max_body_bytes = v;
        }
        if let Some(v) = file.batch_bytes_in_flight {
            self.batch_bytes_in_flight = v;
        }
        if let Some(v) = file.temporal_instance_limit {
            self.temporal_instance_limit = v;
        }
        if let Some(v) = file.files_dir {
            self.files_dir = v;
        }
        if let Some(v) = file.max_upload_bytes {
            self.max_upload_bytes = v;
        }
        if let Some(v) = file.allow_anonymous_writes {
            self.allow_anonymous_writes = v;
        }
        if let Some(v) = file.tls_cert {
            self.tls_cert = Some(v);
        }
        if let Some(v) = file.tls_key {
            self.tls_key = Some(v);
        }
        if let Some(v) = file.session_lifetime_minutes {
            self.session_lifetime = Duration::from_secs(v * 60);
        }
        if let Some(v) = file.oidc {
            self.oidc = Some(v);
        }
        if let Some(v) = file.encryption_keys_file {
            self.encryption_keys = Some(EncryptionKeys::File(v));
        }
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = var("RENKEI_LISTEN") {
            self.listen = v.parse().with_context(|| {
                format!("RENKEI_LISTEN={v} is not an address like 0.0.0.0:1026")
            })?;
        }
        if let Some(v) = var("RENKEI_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = var("RENKEI_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = var("RENKEI_CONTEXTS_DIR") {
            self.contexts_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = var("RENKEI_REMOTE_CONTEXTS") {
            self.remote_contexts = parse_bool("RENKEI_REMOTE_CONTEXTS", &v)?;
        }
        if let Some(v) = var("RENKEI_CONTEXT_FETCH_TIMEOUT_MS") {
            let ms: u64 = v
                .parse()
                .with_context(|| format!("RENKEI_CONTEXT_FETCH_TIMEOUT_MS={v} is not a number"))?;
            self.context_fetch_timeout = Duration::from_millis(ms);
        }
        if let Some(v) = var("RENKEI_ALLOW_ANONYMOUS_WRITES") {
            self.allow_anonymous_writes = parse_bool("RENKEI_ALLOW_ANONYMOUS_WRITES", &v)?;
        }
        if let Some(v) = var("RENKEI_FILES_DIR") {
            self.files_dir = PathBuf::from(v);
        }
        if let Some(v) = var("RENKEI_MAX_UPLOAD_BYTES") {
            self.max_upload_bytes = v
                .parse()
                .with_context(|| format!("RENKEI_MAX_UPLOAD_BYTES={v} is not a number"))?;
        }
        if let Some(v) = var("RENKEI_TLS_CERT") {
            self.tls_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = var("RENKEI_TLS_KEY") {
            self.tls_key = Some(PathBuf::from(v));
        }
        if let Some(v) = var("RENKEI_ENCRYPTION_KEYS_FILE") {
            self.encryption_keys = Some(EncryptionKeys::File(PathBuf::from(v)));
        }
        if let Some(v) = var("RENKEI_ENCRYPTION_KEYS") {
            self.encryption_keys = Some(EncryptionKeys::Inline(v));
        }
        if let Some(issuer) = var("RENKEI_OIDC_ISSUER") {
            let client_id = var("RENKEI_OIDC_CLIENT_ID")
                .context("RENKEI_OIDC_ISSUER is set but RENKEI_OIDC_CLIENT_ID is not")?;
            self.oidc = Some(OidcConfig {
                issuer,
                client_id,
                client_secret: var("RENKEI_OIDC_CLIENT_SECRET"),
                private_key_file: var("RENKEI_OIDC_PRIVATE_KEY_FILE").map(PathBuf::from),
                key_id: var("RENKEI_OIDC_KEY_ID"),
            });
        }
        let number = |key: &str, value: &str| -> anyhow::Result<u32> {
            value
                .parse()
                .with_context(|| format!("{key}={value} is not a whole number"))
        };
        if let Some(v) = var("RENKEI_RATE_LIMIT_SIGN_IN_PER_MINUTE") {
            self.rate_limits.sign_in_per_minute =
                number("RENKEI_RATE_LIMIT_SIGN_IN_PER_MINUTE", &v)?;
        }
        if let Some(v) = var("RENKEI_RATE_LIMIT_WRITES_PER_SECOND") {
            self.rate_limits.writes_per_second = number("RENKEI_RATE_LIMIT_WRITES_PER_SECOND", &v)?;
        }
        if let Some(v) = var("RENKEI_RATE_LIMIT_WRITES_BURST") {
            self.rate_limits.writes_burst = number("RENKEI_RATE_LIMIT_WRITES_BURST", &v)?;
        }
        if let Some(v) = var("RENKEI_MAX_BODY_BYTES") {
            self.max_body_bytes = v
                .parse()
                .with_context(|| format!("RENKEI_MAX_BODY_BYTES={v} is not a number"))?;
        }
        if let Some(v) = var("RENKEI_BATCH_BYTES_IN_FLIGHT") {
            self.batch_bytes_in_flight = v
                .parse()
                .with_context(|| format!("RENKEI_BATCH_BYTES_IN_FLIGHT={v} is not a number"))?;
        }
        if let Some(base_url) = var("RENKEI_PAYMENT_URL") {
            let secret = var("RENKEI_PAYMENT_SECRET")
                .context("RENKEI_PAYMENT_URL is set but RENKEI_PAYMENT_SECRET is not")?;
            self.payment = Some(PaymentConfig { base_url, secret });
        }
        if let Some(host) = var("RENKEI_SMTP_HOST") {
            let port = match var("RENKEI_SMTP_PORT") {
                Some(v) => v
                    .parse()
                    .with_context(|| format!("RENKEI_SMTP_PORT={v} is not a port number"))?,
                None => 25,
            };
            let from = var("RENKEI_SMTP_FROM")
                .context("RENKEI_SMTP_HOST is set but RENKEI_SMTP_FROM is not")?;
            let mut smtp = notifier::smtp::SmtpConfig::local(port, from);
            smtp.host = host;
            smtp.starttls = var("RENKEI_SMTP_STARTTLS")
                .map(|v| parse_bool("RENKEI_SMTP_STARTTLS", &v))
                .transpose()?
                .unwrap_or(false);
            smtp.username = var("RENKEI_SMTP_USERNAME");
            smtp.password = var("RENKEI_SMTP_PASSWORD");
            self.smtp = Some(smtp);
        }
        if let Some(v) = var("RENKEI_APPLICATIONS_TICK_MS") {
            let ms: u64 = v
                .parse()
                .with_context(|| format!("RENKEI_APPLICATIONS_TICK_MS={v} is not a number"))?;
            self.applications_tick = Duration::from_millis(ms.max(10));
        }
        if let Some(v) = var("RENKEI_TEMPORAL_INSTANCE_LIMIT") {
            self.temporal_instance_limit = number("RENKEI_TEMPORAL_INSTANCE_LIMIT", &v)? as usize;
        }
        if self.temporal_instance_limit == 0 {
            bail!("the temporal instance limit must be at least 1");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("TLS needs both RENKEI_TLS_CERT and RENKEI_TLS_KEY (or tls_cert and tls_key)");
        }
        if let Some(oidc) = &self.oidc {
            if oidc.client_secret.is_some() == oidc.private_key_file.is_some() {
                bail!("OIDC needs exactly one of a client secret (RENKEI_OIDC_CLIENT_SECRET) or a private key file (RENKEI_OIDC_PRIVATE_KEY_FILE)");
            }
        }
        Ok(())
    }

    /// Whether renkei itself terminates TLS.
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Whether browsers reach renkei over HTTPS (directly or through a proxy), so
    /// cookies must be `Secure`.
    pub fn https(&self) -> bool {
        self.serves_tls() || self.public_url.starts_with("https://")
    }
}

fn parse_bool(key: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{key}={value} is not a boolean (use true or false)"),
    }
}

/// Reads a preloaded-contexts directory: `index.json` maps each context URL to a file
/// in the directory holding the context document.
pub fn load_contexts_dir(dir: &Path) -> anyhow::Result<HashMap<String, Value>> {
    let index_path = dir.join("index.json");
    let index_text = std::fs::read_to_string(&index_path).with_context(|| {
        format!(
            "reading {} (it maps context URLs to files)",
            index_path.display()
        )
    })?;
    let index: HashMap<String, String> = serde_json::from_str(&index_text).with_context(|| {
        format!(
            "{} must be a JSON object of URL → file name",
            index_path.display()
        )
    })?;
    let mut contexts = HashMap::new();
    for (url, file) in index {
        let path = dir.join(&file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading context file {}", path.display()))?;
        let document: Value = serde_json::from_str(&text)
            .with_context(|| format!("context file {} is not JSON", path.display()))?;
        if document.get("@context").is_none() {
            bail!("context file {} has no @context member", path.display());
        }
        contexts.insert(url, document);
    }
    Ok(contexts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sqlite_under_data_on_port_1026() {
        let config = Config::default();
        assert_eq!(config.listen.port(), 1026);
        assert_eq!(config.database_url, "sqlite://./data/renkei.db");
    }

    #[test]
    fn environment_overrides_and_reports_bad_values() {
        let mut config = Config::default();
        let env = HashMap::from([
            ("RENKEI_LISTEN", "127.0.0.1:9000"),
            ("RENKEI_DATABASE_URL", "postgres://localhost/renkei"),
            ("RENKEI_REMOTE_CONTEXTS", "false"),
            ("RENKEI_BATCH_BYTES_IN_FLIGHT", "0"),
        ]);
        config
            .apply_env(|k| env.get(k).map(|v| v.to_string()))
            .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.database_url, "postgres://localhost/renkei");
        assert!(!config.remote_contexts);
        assert_eq!(config.batch_bytes_in_flight, 0);

        let bad = HashMap::from([("RENKEI_LISTEN", "port 80")]);
        let err = config
            .apply_env(|k| bad.get(k).map(|v| v.to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("RENKEI_LISTEN"));
    }

    #[test]
    fn a_file_with_an_unknown_key_is_refused() {
        assert!(
            toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\ndatabase = \"x\"").is_err()
        );
        let ok: FileConfig =
            toml::from_str("max_body_bytes = 10\nbatch_bytes_in_flight = 20").unwrap();
        assert_eq!(ok.max_body_bytes, Some(10));
        let mut config = Config::default();
        config.apply_file(ok);
        assert_eq!(config.batch_bytes_in_flight, 20);
    }
}
