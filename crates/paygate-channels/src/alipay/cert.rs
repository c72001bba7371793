//! Certificate mode (公钥证书): the app signs as in public-key mode, and every request also names
//! `app_cert_sn` (the SN of the app's public-key certificate) and `alipay_root_cert_sn` (the SNs of Alipay's RSA
//! root certificates joined by `_`); Alipay's answers and notifications are verified with the public key inside
//! Alipay's public-key certificate, which must chain to one of the roots (Alipay's root bundle, plus any extra roots
//! the operator trusts). An SN is the MD5 (hex) of the issuer's name as RFC 4514 writes it (`CN=…,OU=…,O=…,C=…`,
//! last RDN first), followed by the serial number in decimal: what Alipay's SDKs compute.

use super::{alipay_public_key, AlipayError, VerifyingKey};
use base64::Engine;
use md5::{Digest, Md5};
use x509_cert::der::Encode;
use x509_cert::Certificate;

/// sha1WithRSAEncryption and sha256WithRSAEncryption: only roots signed so count in `alipay_root_cert_sn`
/// (Alipay's bundle also holds SM2 / ECC roots, which its SDKs leave out).
const RSA_ROOT_SIGNATURES: [&str; 2] = ["1.2.840.113549.1.1.5", "1.2.840.113549.1.1.11"];
/// sha256WithRSAEncryption: how Alipay's certificate chain is signed.
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
/// At most this many certificates in one PEM field.
const MAX_CERTIFICATES: usize = 16;

/// What certificate mode needs, read once from the account's three PEM fields.
pub struct CertMode {
    pub app_cert_sn: String,
    pub alipay_root_cert_sn: String,
    /// The SN of Alipay's certificate (answers and notifications may name it as `alipay_cert_sn`).
    pub alipay_cert_sn: String,
    /// The public key of Alipay's certificate: what verifies its answers and notifications.
    pub alipay_key: VerifyingKey,
}

impl CertMode {
    /// From the app's certificate, Alipay's certificate (leaf first; an intermediate may follow) and Alipay's root
    /// bundle; `extra_roots` are PEM certificates the operator also trusts as roots. Alipay's leaf must chain to a
    /// root (each link an RSA-SHA256 signature) or it is refused.
    pub fn new(
        app_cert: &str,
        alipay_cert: &str,
        root_bundle: &str,
        extra_roots: Option<&str>,
    ) -> Result<CertMode, AlipayError> {
        let app = certificates(app_cert, "app_public_cert")?;
        let alipay = certificates(alipay_cert, "alipay_public_cert")?;
        let mut roots = certificates(root_bundle, "alipay_root_cert")?;
        let alipay_root_cert_sn = root_sn(&roots)?;
        if let Some(extra) = extra_roots.filter(|e| !e.trim().is_empty()) {
            roots.extend(certificates(extra, "extra trusted roots")?);
        }
        check_chain(&alipay, &roots)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        for cert in &alipay {
            in_validity(cert, now)?;
        }
        let spki = alipay[0]
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| AlipayError::Key(format!("alipay_public_cert: public key: {e}")))?;
        let alipay_key = alipay_public_key(&base64::engine::general_purpose::STANDARD.encode(spki))
            .map_err(|_| AlipayError::Key("alipay_public_cert does not hold an RSA public key".into()))?;
        Ok(CertMode { app_cert_sn: sn(&app[0]), alipay_root_cert_sn, alipay_cert_sn: sn(&alipay[0]), alipay_key })
    }
}

/// The certificates of a PEM field, in order; none, too many or a bad one is refused.
fn certificates(pem: &str, what: &str) -> Result<Vec<Certificate>, AlipayError> {
    let certs = Certificate::load_pem_chain(pem.trim().as_bytes())
        .map_err(|e| AlipayError::Key(format!("{what} is not PEM certificates: {e}")))?;
    if certs.is_empty() || certs.len() > MAX_CERTIFICATES {
        return Err(AlipayError::Key(format!("{what} must hold 1 to {MAX_CERTIFICATES} certificates")));
    }
    Ok(certs)
}

/// A certificate's SN as Alipay computes it.
pub fn sn(cert: &Certificate) -> String {
    let issuer = cert.tbs_certificate.issuer.to_string();
    let serial = decimal(cert.tbs_certificate.serial_number.as_bytes());
    hex(&Md5::digest(format!("{issuer}{serial}").as_bytes()))
}

/// `alipay_root_cert_sn`: the SNs of the RSA-signed roots, in the bundle's order, joined by `_`.
fn root_sn(roots: &[Certificate]) -> Result<String, AlipayError> {
    let sns: Vec<String> = roots
        .iter()
        .filter(|c| RSA_ROOT_SIGNATURES.contains(&c.signature_algorithm.oid.to_string().as_str()))
        .map(sn)
        .collect();
    if sns.is_empty() {
        return Err(AlipayError::Key("alipay_root_cert holds no RSA root certificate".into()));
    }
    Ok(sns.join("_"))
}

/// Walks from Alipay's leaf through the certificates after it to a trusted root: each certificate's issuer must be
/// the next one's subject and its signature must verify with the next one's key.
fn check_chain(chain: &[Certificate], roots: &[Certificate]) -> Result<(), AlipayError> {
    let mut current = &chain[0];
    for _ in 0..=chain.len() {
        let issuer = &current.tbs_certificate.issuer;
        if let Some(root) = roots.iter().find(|r| &r.tbs_certificate.subject == issuer) {
            return signed_by(current, root);
        }
        let Some(next) = chain.iter().find(|c| &c.tbs_certificate.subject == issuer && *c != current) else {
            break;
        };
        // Only a CA may vouch for another certificate: Alipay's CA also issues merchants' app certificates, whose
        // keys must not make a leaf trusted.
        if !is_ca(next) {
            let subject = &next.tbs_certificate.subject;
            return Err(AlipayError::Key(format!("alipay_public_cert chain: {subject} is not a CA certificate")));
        }
        signed_by(current, next)?;
        current = next;
    }
    Err(AlipayError::Key("alipay_public_cert does not chain to alipay_root_cert (or an extra trusted root)".into()))
}

/// `now` (since the epoch) lies within the certificate's notBefore..notAfter: an expired (or not yet valid)
/// Alipay certificate is refused as the account's problem to fix, never trusted.
fn in_validity(cert: &Certificate, now: std::time::Duration) -> Result<(), AlipayError> {
    let validity = &cert.tbs_certificate.validity;
    let (from, until) = (validity.not_before.to_unix_duration(), validity.not_after.to_unix_duration());
    if now < from || now > until {
        let subject = &cert.tbs_certificate.subject;
        return Err(AlipayError::Key(format!(
            "alipay_public_cert: {subject} is valid from {} to {} (unix seconds), not now",
            from.as_secs(),
            until.as_secs()
        )));
    }
    Ok(())
}

/// Whether `cert` says it is a CA (basicConstraints cA = TRUE).
fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate.get::<x509_cert::ext::pkix::BasicConstraints>(),
        Ok(Some((_, constraints))) if constraints.ca
    )
}

/// `cert`'s signature (RSA-SHA256) verifies with `issuer`'s public key.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), AlipayError> {
    let bad = |why: String| AlipayError::Key(format!("alipay_public_cert chain: {why}"));
    if cert.signature_algorithm.oid.to_string() != SHA256_WITH_RSA {
        return Err(bad(format!("signature algorithm {} is not sha256WithRSA", cert.signature_algorithm.oid)));
    }
    let tbs = cert.tbs_certificate.to_der().map_err(|e| bad(e.to_string()))?;
    let signature = cert.signature.as_bytes().ok_or_else(|| bad("the signature is not whole bytes".into()))?;
    let key = issuer.tbs_certificate.subject_public_key_info.subject_public_key.as_bytes();
    let key = key.ok_or_else(|| bad("the issuer's key is not whole bytes".into()))?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(&tbs, signature)
        .map_err(|_| {
            let (subject, by) = (&cert.tbs_certificate.subject, &issuer.tbs_certificate.subject);
            bad(format!("{subject} is not signed by {by}"))
        })
}

/// A big-endian unsigned integer in decimal (serial numbers are up to 20 bytes).
fn decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut rest = 0u32;
        for b in number.iter_mut() {
            let value = (rest << 8) | u32::from(*b);
            *b = (value / 10) as u8;
            rest = value % 10;
        }
        digits.push(b'0' + rest as u8);
        let zeros = number.iter().take_while(|b| **b == 0).count();
        number.drain(..zeros);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../testdata/alipay_cert/", $name))
        };
    }

    fn mode(alipay_cert: &str, extra: Option<&str>) -> Result<CertMode, AlipayError> {
        CertMode::new(fixture!("app.crt"), alipay_cert, fixture!("alipayRootCert.crt"), extra)
    }

    #[test]
    fn alipays_published_root_bundle_gives_the_sn_its_sdks_send() {
        // The SM2 and ECC roots are left out; Ant Financial R1 (sha256WithRSA) and iTrusChina (sha1WithRSA) count.
        let roots = certificates(fixture!("alipay_public_root_bundle.crt"), "roots").unwrap();
        assert_eq!(roots.len(), 4);
        assert_eq!(root_sn(&roots).unwrap(), "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6");
    }

    #[test]
    fn sns_and_key_of_a_chained_alipay_certificate() {
        // Expected values from openssl (fixtures README): RFC 2253 issuer + decimal serial, MD5.
        let m = mode(fixture!("alipayCertPublicKey_RSA2.crt"), None).unwrap();
        assert_eq!(m.app_cert_sn, "85a26a69032fe196c796c88a32f1aa94");
        assert_eq!(m.alipay_cert_sn, "4814aa0f6554177f4c7eeb46b1be6db3");
        assert_eq!(m.alipay_root_cert_sn, "986382d059c06b5e6739963e1aedd649", "the EC root is left out");
        // The key inside Alipay's certificate verifies what Alipay's private key signed.
        let alipay = crate::rsa::SigningKey::from_pem(fixture!("alipay_private.pem")).unwrap();
        let signature = alipay.sign(b"alipay_trade_query_response").unwrap();
        assert!(m.alipay_key.verify(b"alipay_trade_query_response", &signature).is_ok());
        let app = crate::rsa::SigningKey::from_pem(fixture!("app_private.pem")).unwrap();
        assert!(m.alipay_key.verify(b"x", &app.sign(b"x").unwrap()).is_err());
    }

    #[test]
    fn an_alipay_certificate_must_chain_to_a_trusted_root() {
        // Same names, another key: its self-made intermediate is no root of ours.
        let forged = mode(fixture!("forged_chain.crt"), None).err().unwrap();
        assert!(forged.message().contains("does not chain"), "{forged}");
        // A leaf under the real intermediate's name but not signed by it: refused at that link.
        let spliced = format!("{}{}", fixture!("forged_leaf.crt"), fixture!("int.crt"));
        let err = mode(&spliced, None).err().unwrap();
        assert!(err.message().contains("is not signed by"), "{err}");
        // The leaf without its intermediate does not reach the root...
        let alone = mode(fixture!("alipay_leaf.crt"), None).err().unwrap();
        assert!(alone.message().contains("does not chain"), "{alone}");
        // ...unless the operator trusts the intermediate as an extra root; the SN Alipay gets stays the bundle's.
        let m = mode(fixture!("alipay_leaf.crt"), Some(fixture!("int.crt"))).unwrap();
        assert_eq!(m.alipay_root_cert_sn, "986382d059c06b5e6739963e1aedd649");
        // A trusted extra root does not make a forged chain good.
        assert!(mode(fixture!("forged_chain.crt"), Some(fixture!("int.crt"))).is_err());
    }

    #[test]
    fn bad_certificate_fields_are_refused_by_name() {
        let err = CertMode::new("not a cert", fixture!("alipay_leaf.crt"), fixture!("root.crt"), None).err().unwrap();
        assert!(err.message().starts_with("app_public_cert"), "{err}");
        let err =
            mode(fixture!("alipayCertPublicKey_RSA2.crt"), Some("-----BEGIN CERTIFICATE-----\nAAAA\n")).err().unwrap();
        assert!(err.message().starts_with("extra trusted roots"), "{err}");
        let only_ec = CertMode::new(fixture!("app.crt"), fixture!("alipay_leaf.crt"), fixture!("ecroot.crt"), None);
        assert!(only_ec.err().unwrap().message().contains("no RSA root"));
    }

    #[test]
    fn certificates_are_trusted_only_within_their_validity() {
        let leaf = certificates(include_str!("../../testdata/alipay_cert/alipay_leaf.crt"), "leaf").unwrap();
        let validity = &leaf[0].tbs_certificate.validity;
        let from = validity.not_before.to_unix_duration();
        let until = validity.not_after.to_unix_duration();
        assert!(in_validity(&leaf[0], from).is_ok() && in_validity(&leaf[0], until).is_ok());
        let early = in_validity(&leaf[0], from - std::time::Duration::from_secs(1)).unwrap_err();
        assert!(early.to_string().contains("not now"), "{early}");
        assert!(in_validity(&leaf[0], until + std::time::Duration::from_secs(1)).is_err());
    }

    #[test]
    fn serial_numbers_in_decimal() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0]), "0");
        assert_eq!(decimal(&[0x00, 0xff]), "255");
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(decimal(&[0x0b, 0xeb, 0xc2, 0x00]), "200000000");
        // 2^64 + 1: past any machine integer.
        assert_eq!(decimal(&[1, 0, 0, 0, 0, 0, 0, 0, 1]), "18446744073709551617");
    }
}
