//! The simulator's platform certificate: a self-signed X.509 v3 certificate of its platform key, made at start (no
//! X.509 crate: the few DER elements are written here), served by `GET /v3/certificates` sealed under the asking
//! merchant's APIv3 key, as WeChat serves its platform certificates. Its serial is what `Wechatpay-Serial` names
//! when the simulator signs in certificate mode (`platform_certificates` in the configuration).

use super::rfc3339;
use base64::Engine;
use paygate_channels::wechat::v3::{random_token, Resource};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// 2025-01-01T00:00:00Z and 2049-12-31T23:59:59Z (UTCTime's last year).
const NOT_BEFORE: (&str, i64) = ("250101000000Z", 1_735_689_600);
const NOT_AFTER: (&str, i64) = ("491231235959Z", 2_524_607_999);
const SHA256_WITH_RSA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00];
const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

pub struct PlatformCertificate {
    /// Uppercase hex, as WeChat writes `serial_no`.
    pub serial: String,
    pub pem: String,
}

/// One DER element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len().to_be_bytes();
    let skip = len.iter().take_while(|b| **b == 0).count();
    match content.len() {
        n if n < 0x80 => out.push(len[len.len() - 1]),
        _ => {
            out.push(0x80 | (len.len() - skip) as u8);
            out.extend_from_slice(&len[skip..]);
        }
    }
    out.extend_from_slice(content);
    out
}

impl PlatformCertificate {
    pub fn self_signed(key: &rsa::RsaPrivateKey) -> Result<PlatformCertificate, String> {
        let spki = key.to_public_key().to_public_key_der().map_err(|e| format!("platform certificate: {e}"))?;
        // A positive 20-byte serial derived from the key, so a configured key always has the same serial.
        let mut serial: Vec<u8> = Sha256::digest(spki.as_bytes())[..20].to_vec();
        serial[0] = (serial[0] & 0x7f) | 0x10;
        let name = tlv(0x30, &tlv(0x31, &tlv(0x30, &[COMMON_NAME, &tlv(0x0c, b"WeChat Pay Simulator")].concat())));
        let validity = tlv(0x30, &[tlv(0x17, NOT_BEFORE.0.as_bytes()), tlv(0x17, NOT_AFTER.0.as_bytes())].concat());
        let algorithm = tlv(0x30, SHA256_WITH_RSA);
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x02, &[2])),
                tlv(0x02, &serial),
                algorithm.clone(),
                name.clone(),
                validity,
                name,
                spki.as_bytes().to_vec(),
            ]
            .concat(),
        );
        let signature = SigningKey::<Sha256>::new(key.clone()).sign(&tbs).to_vec();
        let der = tlv(0x30, &[tbs, algorithm, tlv(0x03, &[&[0u8][..], &signature].concat())].concat());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
        Ok(PlatformCertificate { serial: paygate_channels::wechat::hex_upper(&serial), pem })
    }

    /// The `GET /v3/certificates` answer for a merchant: the certificate sealed under its APIv3 key.
    pub fn answer(&self, api_v3_key: &str) -> Result<Value, String> {
        let sealed = Resource::seal(api_v3_key.as_bytes(), &random_token(12), "certificate", self.pem.as_bytes(), "")
            .map_err(|e| format!("sealing the certificate: {e}"))?;
        Ok(json!({"data": [{
            "serial_no": self.serial,
            "effective_time": rfc3339(NOT_BEFORE.1),
            "expire_time": rfc3339(NOT_AFTER.1),
            "encrypt_certificate": {"algorithm": sealed.algorithm, "nonce": sealed.nonce,
                "associated_data": sealed.associated_data, "ciphertext": sealed.ciphertext},
        }]}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paygate_channels::wechat::v3::VerifyingKey;

    #[test]
    fn the_certificate_reads_back_with_its_key_and_serial() {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let cert = PlatformCertificate::self_signed(&key).unwrap();
        let (read, serial) = VerifyingKey::from_certificate_pem(&cert.pem).unwrap();
        assert_eq!((serial.len(), serial.clone()), (40, cert.serial.clone()));
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let signing = paygate_channels::wechat::v3::SigningKey::from_pem(&pem).unwrap();
        read.verify(b"m", &signing.sign(b"m").unwrap()).expect("the certificate's key is the platform key");
        let answer = cert.answer("v3KeyV3KeyV3KeyV3KeyV3KeyV3Key12").unwrap();
        let sealed: Resource = serde_json::from_value(answer["data"][0]["encrypt_certificate"].clone()).unwrap();
        let opened = sealed.open(b"v3KeyV3KeyV3KeyV3KeyV3KeyV3Key12").unwrap();
        assert_eq!(String::from_utf8(opened).unwrap(), cert.pem);
    }
}
