//! The keyring: named AES-256-GCM keys, one current for sealing and all usable for opening,
//! loaded from a compact `id:BASE64KEY,...` spec or a private file.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{KeyringError, OpenError};
use crate::format::{format_sealed, is_valid_key_id, parse_sealed, NONCE_LEN};

/// Length of an AES-256 key in bytes.
const KEY_LEN: usize = 32;

/// Operators paste keys from many tools, so keys are accepted with or without padding.
const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One named key. The cipher's AES key schedule and GHASH key are wiped on drop (the `zeroize`
/// features of `aes`, `ghash` and `polyval`, see Cargo.toml); the raw key bytes are not kept.
#[derive(Clone)]
struct NamedKey {
    id: String,
    cipher: Aes256Gcm,
}

/// A set of named 256-bit keys. The first key is current: [`seal`](Keyring::seal) uses it,
/// while [`open`](Keyring::open) uses whichever key a sealed value names.
///
/// `Debug` shows key ids only.
#[derive(Clone)]
pub struct Keyring {
    /// Never empty; index 0 is the current key.
    keys: Vec<NamedKey>,
}

impl Keyring {
    /// Parses `id:BASE64KEY,id:BASE64KEY,...`. The first entry is the current key. Entries may
    /// also be separated by newlines and surrounded by whitespace; blank entries are skipped.
    /// Keys are standard or URL-safe base64, padded or not, and must decode to 32 bytes.
    ///
    /// Errors name the offending entry by position (from 1) and by id once the id is valid,
    /// never by its key.
    pub fn parse(spec: &str) -> Result<Keyring, KeyringError> {
        Self::from_entries(spec.split([',', '\n']))
    }

    /// Reads a spec from a file: the same syntax as [`parse`](Keyring::parse), and also one
    /// entry per line, with lines starting with `#` ignored.
    ///
    /// On unix the file must not be accessible to group or others (`chmod 600`), since it holds
    /// every key that protects the applicants' data.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Keyring, KeyringError> {
        let path = path.as_ref();
        let io_error = |source| KeyringError::Io {
            path: path.to_path_buf(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)
                .map_err(io_error)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyringError::InsecurePermissions {
                    path: path.to_path_buf(),
                    mode: mode & 0o777,
                });
            }
        }
        let contents = Zeroizing::new(std::fs::read_to_string(path).map_err(io_error)?);
        let entries = contents
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .flat_map(|line| line.split(','));
        Self::from_entries(entries)
    }

    /// Returns a fresh `id:BASE64KEY` entry with a key from the OS random generator, ready to
    /// be put first in a keyring spec. The returned string holds key material: write it where
    /// the keys live and nowhere else.
    pub fn generate_key_entry(id: &str) -> Result<String, KeyringError> {
        if !is_valid_key_id(id) {
            return Err(KeyringError::InvalidId { position: 1 });
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut());
        let encoded_key = Zeroizing::new(STANDARD.encode(key.as_ref()));
        Ok(format!("{id}:{}", encoded_key.as_str()))
    }

    fn from_entries<'a>(entries: impl Iterator<Item = &'a str>) -> Result<Keyring, KeyringError> {
        let mut keys: Vec<NamedKey> = Vec::new();
        for entry in entries.map(str::trim).filter(|entry| !entry.is_empty()) {
            let position = keys.len() + 1;
            let (id, encoded_key) = entry
                .split_once(':')
                .ok_or(KeyringError::MissingSeparator { position })?;
            let id = id.trim();
            if !is_valid_key_id(id) {
                return Err(KeyringError::InvalidId { position });
            }
            if keys.iter().any(|key| key.id == id) {
                return Err(KeyringError::DuplicateId {
                    id: id.to_owned(),
                    position,
                });
            }
            let cipher = decode_key(id, position, encoded_key.trim())?;
            keys.push(NamedKey {
                id: id.to_owned(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Keyring { keys })
    }

    /// The id of the key that seals.
    pub fn current_key_id(&self) -> &str {
        &self.current().id
    }

    /// All key ids, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }

    /// Seals `plaintext` with the current key under `context` (for example
    /// `"application:123:applicant_name"`); the same context is needed to open it.
    ///
    /// # Panics
    ///
    /// Only if the OS random generator fails or `plaintext` exceeds AES-GCM's limit of 64 GiB.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let key = self.current();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM refuses only plaintexts above 64 GiB");
        let mut payload = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&ciphertext);
        format_sealed(&key.id, &payload)
    }

    /// [`seal`](Keyring::seal) for text.
    pub fn seal_str(&self, plaintext: &str, context: &str) -> String {
        self.seal(plaintext.as_bytes(), context)
    }

    /// Opens a sealed value with the key it names, under `context`. The plaintext is wiped
    /// from memory when the returned buffer is dropped.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let parts = parse_sealed(sealed).ok_or(OpenError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|key| key.id == parts.key_id)
            .ok_or_else(|| OpenError::UnknownKey(parts.key_id.to_owned()))?;
        let (nonce, ciphertext) = parts.payload.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Tampered)
    }

    /// [`open`](Keyring::open) for text; a value that is not UTF-8 gives
    /// [`OpenError::NotUtf8`]. The returned `String` is not wiped on drop.
    pub fn open_str(&self, sealed: &str, context: &str) -> Result<String, OpenError> {
        let plaintext = self.open(sealed, context)?;
        std::str::from_utf8(&plaintext)
            .map(str::to_owned)
            .map_err(|_| OpenError::NotUtf8)
    }

    /// Whether `sealed` names the current key, i.e. needs no reseal. This reads the key id
    /// only and does not authenticate; a text that is not a sealed value gives `false`.
    pub fn is_current(&self, sealed: &str) -> bool {
        parse_sealed(sealed).is_some_and(|parts| parts.key_id == self.current().id)
    }

    /// Opens `sealed` with whichever key sealed it and seals it again with the current key,
    /// under the same `context`. Always produces a fresh value (new nonce), even when `sealed`
    /// was already current.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<String, OpenError> {
        let plaintext = self.open(sealed, context)?;
        Ok(self.seal(&plaintext, context))
    }

    fn current(&self) -> &NamedKey {
        // `from_entries` refuses an empty ring, so index 0 always exists.
        &self.keys[0]
    }
}

/// Decodes one base64 key into a cipher, keeping the raw bytes only in wiped buffers.
fn decode_key(id: &str, position: usize, encoded_key: &str) -> Result<Aes256Gcm, KeyringError> {
    let key_bytes = STANDARD_ANY_PADDING
        .decode(encoded_key)
        .or_else(|_| URL_SAFE_ANY_PADDING.decode(encoded_key))
        .map(Zeroizing::new)
        .map_err(|_| KeyringError::InvalidBase64 {
            id: id.to_owned(),
            position,
        })?;
    let wrong_length = || KeyringError::WrongKeyLength {
        id: id.to_owned(),
        position,
        length: key_bytes.len(),
    };
    if key_bytes.len() != KEY_LEN {
        return Err(wrong_length());
    }
    Aes256Gcm::new_from_slice(&key_bytes).map_err(|_| wrong_length())
}

impl fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Keyring")
            .field("current", &self.current_key_id())
            .field("keys", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}
