//! Secrets at rest: AES-256-GCM under master keys that come from the operator's configuration
//! (`PAYGATE_MASTER_KEYS` / `--master-keys` / `--master-key-file`), never from the database.
//! A sealed value carries the id of the key that sealed it; the first key configured seals, the
//! others only open (rotation: add the new key first, `paygate channel-account rekey`, then drop
//! the old one). Each seal takes a fresh random 96-bit nonce, and the caller's associated data
//! (which row the value belongs to) must match to open it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use paygate_domain::{Problem, ProblemKind};
use secrecy::zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;

/// The configured master keys, current first. `Debug` shows the ids only.
#[derive(Clone, Default)]
pub struct MasterKeys {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys").field("ids", &self.ids()).finish()
    }
}

/// A sealed value: ciphertext (with its 16-byte tag), the nonce, and the key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl MasterKeys {
    /// `kid:base64(32 bytes)` entries separated by commas or newlines; the first is current.
    /// Errors name `master_keys` and never repeat key material.
    pub fn parse(text: &str) -> Result<MasterKeys, Problem> {
        let bad = |m: String| Problem::invalid("master_keys", m);
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for entry in text.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty() && !e.starts_with('#')) {
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| bad("each master key must be written KEY_ID:BASE64 (32 bytes)".into()))?;
            let id = id.trim();
            if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(bad("a master key id must be 1 to 32 letters, digits, '-', '_' or '.'".into()));
            }
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| bad(format!("master key '{id}' is not valid base64")))?,
            );
            if bytes.len() != 32 {
                return Err(bad(format!("master key '{id}' must be 32 bytes, got {}", bytes.len())));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(bad(format!("master key id '{id}' is given twice")));
            }
            let cipher =
                Aes256Gcm::new_from_slice(&bytes).map_err(|_| bad(format!("master key '{id}' is unusable")))?;
            keys.push((id.to_string(), cipher));
        }
        Ok(MasterKeys { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id new values are sealed under.
    pub fn current_id(&self) -> Option<&str> {
        self.keys.first().map(|(id, _)| id.as_str())
    }

    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// Seals `plaintext` under the current key with a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, Problem> {
        let (key_id, cipher) = self.keys.first().ok_or_else(no_master_key)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(Problem::internal)?;
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .map_err(|_| Problem::internal("AES-GCM sealing failed"))?;
        Ok(Sealed { key_id: key_id.clone(), nonce: nonce.to_vec(), ciphertext })
    }

    /// Opens a sealed value; a clear channel error (never a panic) when the key is not
    /// configured or the value does not authenticate (wrong key, other row, tampered).
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, Problem> {
        let Some((_, cipher)) = self.keys.iter().find(|(id, _)| *id == sealed.key_id) else {
            return Err(undecryptable(format!(
                "they are sealed under master key '{}', which this server is not configured with \
                 (PAYGATE_MASTER_KEYS has: {})",
                sealed.key_id,
                if self.keys.is_empty() { "no keys".to_string() } else { self.ids().join(", ") }
            )));
        };
        if sealed.nonce.len() != NONCE_LEN {
            return Err(undecryptable("the stored nonce is not 96 bits".into()));
        }
        cipher
            .decrypt(Nonce::from_slice(&sealed.nonce), Payload { msg: &sealed.ciphertext, aad })
            .map(Zeroizing::new)
            .map_err(|_| {
                undecryptable(format!(
                    "they do not authenticate under master key '{}' (wrong key material, or the row was \
                     altered or copied from another account)",
                    sealed.key_id
                ))
            })
    }
}

/// Setting a secret without a master key configured.
pub fn no_master_key() -> Problem {
    Problem::new(
        ProblemKind::Channel,
        "master_key_missing",
        "This server has no master key for channel-account secrets, so it will not store them: its operator \
         must set PAYGATE_MASTER_KEYS (or --master-keys / --master-key-file).",
    )
}

fn undecryptable(why: String) -> Problem {
    Problem::new(
        ProblemKind::Channel,
        "channel_account_undecryptable",
        format!("The channel account's secrets cannot be decrypted: {why}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> String {
        format!("{id}:{}", base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    #[test]
    fn round_trip_and_a_fresh_nonce_each_time() {
        let keys = MasterKeys::parse(&key("k1", 7)).unwrap();
        let a = keys.seal(b"row", b"secret").unwrap();
        let b = keys.seal(b"row", b"secret").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(a.key_id, "k1");
        assert_eq!(&keys.open(&a, b"row").unwrap()[..], b"secret");
    }

    #[test]
    fn wrong_aad_wrong_key_and_tampering_fail_clearly() {
        let keys = MasterKeys::parse(&key("k1", 7)).unwrap();
        let sealed = keys.seal(b"app_a/test/wechat", b"secret").unwrap();
        let err = keys.open(&sealed, b"app_b/test/wechat").unwrap_err();
        assert_eq!(err.code, "channel_account_undecryptable");
        let other = MasterKeys::parse(&key("k1", 8)).unwrap();
        assert!(other.open(&sealed, b"app_a/test/wechat").is_err(), "same id, other material");
        let missing = MasterKeys::parse(&key("k2", 7)).unwrap();
        assert!(missing.open(&sealed, b"app_a/test/wechat").unwrap_err().message.contains("'k1'"));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(keys.open(&tampered, b"app_a/test/wechat").is_err());
        assert!(MasterKeys::default().seal(b"", b"x").unwrap_err().code == "master_key_missing");
    }

    #[test]
    fn rotation_seals_under_the_first_and_opens_under_any() {
        let old = MasterKeys::parse(&key("old", 1)).unwrap();
        let sealed = old.seal(b"aad", b"v").unwrap();
        let both = MasterKeys::parse(&format!("{},{}", key("new", 2), key("old", 1))).unwrap();
        assert_eq!(both.current_id(), Some("new"));
        assert_eq!(&both.open(&sealed, b"aad").unwrap()[..], b"v");
        assert_eq!(both.seal(b"aad", b"v").unwrap().key_id, "new");
    }

    #[test]
    fn bad_configuration_is_refused_without_echoing_keys() {
        for bad in ["nokey", "k1:abc", "k1:", &format!("{},{}", key("a", 1), key("a", 2)), "bad id:AAAA"] {
            let err = MasterKeys::parse(bad).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("master_keys"), "{bad}");
        }
        let err = MasterKeys::parse("k1:AAAA").unwrap_err();
        assert!(err.message.contains("32 bytes") && !err.message.contains("AAAA"));
        assert!(!format!("{:?}", MasterKeys::parse(&key("k1", 9)).unwrap()).contains("CQkJ"));
    }
}
