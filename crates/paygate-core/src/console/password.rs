//! Console passwords: argon2id PHC strings (RustCrypto `argon2`). The parameters are written into each hash,
//! so raising them later only affects new hashes; verification reads them from the stored string.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use paygate_domain::Problem;
use std::sync::OnceLock;

/// OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): a guess costs the attacker the same memory.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Long enough for any passphrase, short enough that a megabyte body is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon2() -> Result<Argon2<'static>, Problem> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| Problem::internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new password's rules, checked before it is hashed.
pub fn check_new(password: &str) -> Result<(), Problem> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Problem::invalid(
            "password",
            format!("The password needs at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Problem::invalid("password", format!("The password may have at most {MAX_PASSWORD_BYTES} bytes.")));
    }
    if password.chars().any(char::is_control) {
        return Err(Problem::invalid("password", "The password may not contain control characters."));
    }
    Ok(())
}

/// The PHC string of `password` under a fresh 16-byte salt.
pub fn hash(password: &str) -> Result<String, Problem> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(Problem::internal)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Problem::internal(e.to_string()))?;
    let hashed = argon2()?.hash_password(password.as_bytes(), &salt).map_err(|e| Problem::internal(e.to_string()))?;
    Ok(hashed.to_string())
}

/// Whether `password` matches the stored PHC string (constant-time compare inside `argon2`). A stored string
/// that does not parse never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash no password is known for: an unknown or disabled user still costs one verification, so the answer's
/// timing does not tell which emails exist.
pub fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut random = [0u8; 32];
        let _ = getrandom::getrandom(&mut random);
        hash(&crate::hex(&random)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert_ne!(hash("correct horse battery").unwrap(), stored, "fresh salt each time");
        assert!(check_new("short").is_err() && check_new("long enough pass").is_ok());
        assert!(check_new(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(!decoy().is_empty());
    }
}
