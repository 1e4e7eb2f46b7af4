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
        if let Some(v) = var("RENKEI_MAX_BODY_BYTES") {
            self.max_body_bytes = v
                .parse()
                .with_context(|| format!("RENKEI_MAX_BODY_BYTES={v} is not a number"))?;
        }
        Ok(())
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
        ]);
        config
            .apply_env(|k| env.get(k).map(|v| v.to_string()))
            .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.database_url, "postgres://localhost/renkei");
        assert!(!config.remote_contexts);

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
        let ok: FileConfig = toml::from_str("max_body_bytes = 10").unwrap();
        assert_eq!(ok.max_body_bytes, Some(10));
    }
}
