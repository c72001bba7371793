//! RSA keys for the channels' SHA256withRSA (PKCS#1 v1.5) signatures — WeChat Pay v3 and Alipay RSA2. Signing
//! runs on `ring` (constant-time private-key operations, unlike the `rsa` crate: RUSTSEC-2023-0071); PEM is read
//! here by hand (no X.509): PKCS#8 or PKCS#1 private keys, SubjectPublicKeyInfo or PKCS#1 public keys.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use paygate_domain::{Problem, ProblemKind};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use std::fmt;

/// A key that cannot be used, or a signature that does not verify. Each channel maps it into its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaError {
    /// A key that cannot be used (bad PEM, not RSA, too short).
    Key(String),
    /// A signature that is not base64 or does not verify against the key.
    BadSignature(String),
}

impl RsaError {
    pub fn message(&self) -> &str {
        match self {
            RsaError::Key(m) | RsaError::BadSignature(m) => m,
        }
    }
}

impl fmt::Display for RsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for RsaError {}

impl From<RsaError> for Problem {
    fn from(e: RsaError) -> Problem {
        // A key we cannot use is our configuration's fault; a bad signature is what the other side sent.
        match e {
            RsaError::Key(m) => Problem::new(ProblemKind::Internal, "rsa_key", m),
            RsaError::BadSignature(m) => Problem::new(ProblemKind::Channel, "rsa_bad_signature", m),
        }
    }
}

/// A merchant's (or the platform's) RSA private key, for signing.
pub struct SigningKey(RsaKeyPair);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// From a PEM `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1); 2048 bits or more.
    pub fn from_pem(pem: &str) -> Result<SigningKey, RsaError> {
        let (label, der) = pem_decode(pem)?;
        let pair = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            other => return Err(RsaError::Key(format!("PEM holds a {other}, not an RSA private key"))),
        }
        .map_err(|e| RsaError::Key(format!("RSA private key is not usable ({e})")))?;
        Ok(SigningKey(pair))
    }

    /// SHA256withRSA (PKCS#1 v1.5) of `message`, base64.
    pub fn sign(&self, message: &[u8]) -> Result<String, RsaError> {
        let mut sig = vec![0u8; self.0.public().modulus_len()];
        self.0
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| RsaError::Key("RSA signing failed".into()))?;
        Ok(STANDARD.encode(sig))
    }
}

/// An RSA public key, for verifying.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    /// PKCS#1 `RSAPublicKey` DER, what ring takes.
    der: Vec<u8>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({} bytes)", self.der.len())
    }
}

impl VerifyingKey {
    /// From a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, the "WeChat Pay public key" form) or `RSA PUBLIC KEY`.
    pub fn from_pem(pem: &str) -> Result<VerifyingKey, RsaError> {
        let (label, der) = pem_decode(pem)?;
        let der = match label.as_str() {
            "PUBLIC KEY" => spki_rsa_key(&der)?,
            "RSA PUBLIC KEY" => der,
            other => return Err(RsaError::Key(format!("PEM holds a {other}, not an RSA public key"))),
        };
        VerifyingKey::from_rsa_public_key(der)
    }

    /// The subject's key and the serial number (uppercase hex, as WeChat writes `serial_no`) of a PEM X.509
    /// certificate (a WeChat Pay platform certificate). Whoever issued it is the caller's question.
    pub fn from_certificate_pem(pem: &str) -> Result<(VerifyingKey, String), RsaError> {
        let bad = |m: &str| RsaError::Key(format!("certificate: {m}"));
        let (label, der) = pem_decode(pem)?;
        if label != "CERTIFICATE" {
            return Err(bad(&format!("PEM holds a {label}, not a CERTIFICATE")));
        }
        let (tag, certificate, _) = der_next(&der)?;
        let (tbs_tag, tbs, _) = der_next(certificate)?;
        if tag != 0x30 || tbs_tag != 0x30 {
            return Err(bad("not an X.509 Certificate"));
        }
        let (mut field_tag, mut field, mut rest) = der_next(tbs)?;
        if field_tag == 0xa0 {
            // [0] version, then the serial number.
            (field_tag, field, rest) = der_next(rest)?;
        }
        if field_tag != 0x02 || field.is_empty() {
            return Err(bad("no serialNumber"));
        }
        let digits = match field.split_first() {
            Some((0, tail)) if !tail.is_empty() => tail,
            _ => field,
        };
        let serial = crate::wechat::hex_upper(digits);
        // signature, issuer, validity, subject: skipped; then subjectPublicKeyInfo, header and all.
        for _ in 0..4 {
            rest = der_next(rest)?.2;
        }
        let after = der_next(rest)?.2;
        let spki = &rest[..rest.len() - after.len()];
        Ok((VerifyingKey::from_rsa_public_key(spki_rsa_key(spki)?)?, serial))
    }

    /// From PKCS#1 `RSAPublicKey` DER, checked now.
    fn from_rsa_public_key(der: Vec<u8>) -> Result<VerifyingKey, RsaError> {
        // ring reads the key only when verifying; refuse one that is not `RSAPublicKey` now, at configuration.
        let (tag, fields, rest) = der_next(&der)?;
        let (n_tag, _, fields) = der_next(fields)?;
        let (e_tag, _, fields) = der_next(fields)?;
        if tag != 0x30 || n_tag != 0x02 || e_tag != 0x02 || !fields.is_empty() || !rest.is_empty() {
            return Err(RsaError::Key("public key is not an RSAPublicKey (modulus, exponent)".into()));
        }
        Ok(VerifyingKey { der })
    }

    /// RSA-OAEP (SHA-1, MGF1-SHA-1: WeChat's RSA_PKCS1_OAEP_PADDING) encryption of `plain`, base64: how WeChat Pay v3
    /// wants sensitive fields (a receiver's name). A public-key operation: no secret to leak by timing.
    pub fn encrypt_oaep_sha1(&self, plain: &[u8]) -> Result<String, RsaError> {
        use ::rsa::pkcs1::DecodeRsaPublicKey;
        let key = ::rsa::RsaPublicKey::from_pkcs1_der(&self.der).map_err(|e| RsaError::Key(e.to_string()))?;
        let sealed = key
            .encrypt(&mut ::rsa::rand_core::OsRng, ::rsa::Oaep::new::<sha1::Sha1>(), plain)
            .map_err(|e| RsaError::Key(format!("RSA-OAEP: {e}")))?;
        Ok(STANDARD.encode(sealed))
    }

    /// Checks a base64 SHA256withRSA signature of `message`.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> Result<(), RsaError> {
        let sig = STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| RsaError::BadSignature("signature is not base64".into()))?;
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.der)
            .verify(message, &sig)
            .map_err(|_| RsaError::BadSignature("signature does not verify".into()))
    }
}

/// The label and DER bytes of the first PEM block in `pem`.
pub(crate) fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), RsaError> {
    let bad = |m: &str| RsaError::Key(format!("PEM: {m}"));
    let start = pem.find("-----BEGIN ").ok_or_else(|| bad("no BEGIN line"))?;
    let after = &pem[start + "-----BEGIN ".len()..];
    let label_end = after.find("-----").ok_or_else(|| bad("BEGIN line is not closed"))?;
    let label = &after[..label_end];
    let body = &after[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body.find(&end_marker).ok_or_else(|| bad("no matching END line"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|_| bad("body is not base64"))?;
    Ok((label.to_string(), der))
}

/// One DER element: (tag, contents, what follows).
fn der_next(input: &[u8]) -> Result<(u8, &[u8], &[u8]), RsaError> {
    let bad = || RsaError::Key("public key DER is malformed".into());
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The `RSAPublicKey` inside a SubjectPublicKeyInfo whose algorithm is rsaEncryption.
fn spki_rsa_key(der: &[u8]) -> Result<Vec<u8>, RsaError> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (tag, spki, _) = der_next(der)?;
    let (alg_tag, alg, rest) = der_next(spki)?;
    let (oid_tag, oid, _) = der_next(alg)?;
    if tag != 0x30 || alg_tag != 0x30 || oid_tag != 0x06 || oid != RSA_ENCRYPTION {
        return Err(RsaError::Key("public key is not an RSA SubjectPublicKeyInfo".into()));
    }
    let (bits_tag, bits, _) = der_next(rest)?;
    match bits.split_first() {
        Some((0, key)) if bits_tag == 0x03 => Ok(key.to_vec()),
        _ => Err(RsaError::Key("public key BIT STRING is malformed".into())),
    }
}
