//! Builds the application service from the configuration: the field-encryption keyring
//! and the payment gateway.
//!
//! Without configured keys (`RENKEI_ENCRYPTION_KEYS` / `_FILE`) renkei generates a key
//! file next to its files directory on first start, readable by its owner only, and
//! warns: the embedded default then works out of the box, and a production deployment
//! (several nodes, backups) is told to manage its keys. Losing the keys loses the
//! applications' answers, so the file is never overwritten.

use crate::config::{Config, EncryptionKeys};
use anyhow::Context as _;
use field_crypto::Keyring;
use procedures::payment::{GenericRedirectConfig, GenericRedirectProvider, PaymentProvider};
use procedures::service::{Applications, Settings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::applications::SharedApplicationStore;

/// The name payments made through the configured gateway are stored under.
pub const GATEWAY_NAME: &str = "generic";

pub fn service(store: SharedApplicationStore, config: &Config) -> anyhow::Result<Applications> {
    let keys = Arc::new(keyring(config)?);
    let provider: Option<Arc<dyn PaymentProvider>> = match &config.payment {
        Some(payment) => Some(Arc::new(
            GenericRedirectProvider::new(GenericRedirectConfig::new(
                GATEWAY_NAME,
                payment.base_url.clone(),
                payment.secret.clone().into_bytes(),
            ))
            .map_err(|e| anyhow::anyhow!("payment gateway: {e}"))?,
        )),
        None => None,
    };
    Ok(Applications::new(
        store,
        keys,
        provider,
        Settings {
            public_url: config.public_url.clone(),
            payment_ttl: chrono::Duration::minutes(30),
        },
    ))
}

fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    match &config.encryption_keys {
        Some(EncryptionKeys::Inline(spec)) => {
            Keyring::parse(spec).context("RENKEI_ENCRYPTION_KEYS")
        }
        Some(EncryptionKeys::File(path)) => Keyring::from_file(path)
            .with_context(|| format!("encryption keys file {}", path.display())),
        None => generated_keyring(&default_key_file(&config.files_dir)),
    }
}

fn default_key_file(files_dir: &Path) -> PathBuf {
    files_dir
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("encryption.keys")
}

fn generated_keyring(path: &Path) -> anyhow::Result<Keyring> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let entry = Keyring::generate_key_entry("k1")?;
        let text = format!("# renkei field-encryption keys; back this file up\n{entry}\n");
        match write_private(path, &text) {
            Ok(()) => tracing::warn!(
                file = %path.display(),
                "no encryption keys configured (RENKEI_ENCRYPTION_KEYS_FILE): generated a key \
                 file; back it up, and configure the same keys on every node"
            ),
            // Another process starting at the same moment wrote it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    Keyring::from_file(path).with_context(|| format!("encryption keys file {}", path.display()))
}

/// Writes a new file readable by its owner only; never replaces one.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
