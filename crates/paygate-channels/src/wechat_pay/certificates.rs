//! Which key verifies a v3 answer or callback (`Wechatpay-Serial`). Public-key mode: the account's WeChat Pay public
//! key, by its id. Platform-certificate mode (an account without a public key, WeChat's older way): the platform
//! certificates of `GET /v3/certificates`, each sealed with AEAD_AES_256_GCM under the APIv3 key, kept by serial.
//! A serial not known yet makes paygate fetch them; the fetch's own answer must verify with one of the certificates
//! it brings (WeChat's documented bootstrap: only the merchant's APIv3 key can open them, so only WeChat can have
//! sealed them). An account's `platform_certificate`, when set, is known from the start. Fetches are at most one a
//! minute (an unknown serial in a forged callback must not make paygate call WeChat at will).

use super::v3::{self, V3Keys};
use super::{account_problem, channel_problem, wall_clock, WechatPay};
use crate::wechat::v3::{Resource, ResponseSignature, VerifyingKey};
use crate::wechat::WechatError;
use paygate_domain::accounts::WechatAccount;
use paygate_domain::Problem;
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two fetches of the certificates.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
const PATH: &str = "/v3/certificates";

pub(crate) enum PlatformKeys {
    PublicKey { id: String, key: VerifyingKey },
    Certificates(Mutex<Known>),
}

#[derive(Default)]
pub(crate) struct Known {
    by_serial: Vec<(String, VerifyingKey)>,
    fetched_at: Option<Instant>,
}

impl PlatformKeys {
    pub(crate) fn from_account(account: &WechatAccount) -> Result<PlatformKeys, Problem> {
        match (&account.wechatpay_public_key_id, &account.wechatpay_public_key) {
            (Some(id), Some(pem)) => {
                let key =
                    VerifyingKey::from_pem(pem).map_err(|e| account_problem(&format!("wechatpay_public_key: {e}")))?;
                Ok(PlatformKeys::PublicKey { id: id.clone(), key })
            }
            (None, None) => {
                let mut known = Known::default();
                if let Some(pem) = &account.platform_certificate {
                    let (key, serial) = VerifyingKey::from_certificate_pem(pem)
                        .map_err(|e| account_problem(&format!("platform_certificate: {e}")))?;
                    known.by_serial.push((serial, key));
                }
                Ok(PlatformKeys::Certificates(Mutex::new(known)))
            }
            _ => Err(account_problem("wechatpay_public_key_id and wechatpay_public_key go together")),
        }
    }

    /// The key `serial` names.
    pub(crate) fn key_for(&self, serial: &str) -> Result<VerifyingKey, WechatError> {
        match self {
            PlatformKeys::PublicKey { id, key } if id == serial => Ok(key.clone()),
            PlatformKeys::PublicKey { .. } => Err(WechatError::BadSignature(format!(
                "Wechatpay-Serial '{serial}' is not the account's WeChat Pay public key id"
            ))),
            PlatformKeys::Certificates(known) => known
                .lock()
                .ok()
                .and_then(|k| k.by_serial.iter().find(|(s, _)| s.eq_ignore_ascii_case(serial)).map(|(_, k)| k.clone()))
                .ok_or_else(|| {
                    WechatError::BadSignature(format!(
                        "Wechatpay-Serial '{serial}' names no known platform certificate"
                    ))
                }),
        }
    }

    /// The key to encrypt sensitive fields with and its serial: the public key, or the last certificate known.
    fn encryption_key(&self) -> Option<(String, VerifyingKey)> {
        match self {
            PlatformKeys::PublicKey { id, key } => Some((id.clone(), key.clone())),
            PlatformKeys::Certificates(known) => known.lock().ok().and_then(|k| k.by_serial.last().cloned()),
        }
    }

    /// Whether a fetch could teach `serial` (certificate mode, not known, none fetched in the last minute); when
    /// it could, the fetch is claimed now, under the same lock: of concurrent callers naming unknown serials (real
    /// or forged callbacks), one fetches.
    fn claim_fetch(&self, serial: &str) -> bool {
        let PlatformKeys::Certificates(known) = self else {
            return false;
        };
        let Ok(mut known) = known.lock() else {
            return false;
        };
        let worth = !known.by_serial.iter().any(|(s, _)| s.eq_ignore_ascii_case(serial))
            && known.fetched_at.is_none_or(|at| at.elapsed() >= REFETCH_AFTER);
        if worth {
            known.fetched_at = Some(Instant::now());
        }
        worth
    }
}

impl WechatPay {
    /// Makes sure the platform certificate `serial` (an answer's or a callback's `Wechatpay-Serial`) is known when
    /// it can be: in certificate mode an unknown serial fetches the certificates (at most once a minute). Not
    /// learning it is no error here: verifying then refuses the signature.
    pub async fn learn_platform_serial(&self, serial: &str) -> Result<(), Problem> {
        let Some(keys) = self.v3_keys() else {
            return Ok(());
        };
        if !keys.platform.claim_fetch(serial) {
            return Ok(());
        }
        let fetched = self.fetch_certificates(keys).await?;
        tracing::info!(mch_id = %self.config.mch_id, count = fetched.len(), "WeChat Pay platform certificates fetched");
        if let PlatformKeys::Certificates(known) = &keys.platform {
            if let Ok(mut known) = known.lock() {
                for (serial, key) in fetched {
                    known.by_serial.retain(|(s, _)| !s.eq_ignore_ascii_case(&serial));
                    known.by_serial.push((serial, key));
                }
            }
        }
        Ok(())
    }

    /// The platform key sensitive fields are encrypted with, and the serial to name it by (`Wechatpay-Serial`);
    /// in certificate mode with none known yet, the certificates are fetched first.
    pub(crate) async fn encryption_key(&self, keys: &V3Keys) -> Result<(String, VerifyingKey), Problem> {
        if keys.platform.encryption_key().is_none() {
            self.learn_platform_serial("").await?;
        }
        keys.platform.encryption_key().ok_or_else(|| {
            channel_problem("channel_unavailable", "no WeChat Pay platform certificate is known yet; retry shortly")
        })
    }

    /// `GET /v3/certificates`, opened and checked: the answer verifies with one of the certificates it brings.
    async fn fetch_certificates(&self, keys: &V3Keys) -> Result<Vec<(String, VerifyingKey)>, Problem> {
        let answer = v3::send_signed(self, keys, "GET", PATH, None, Vec::new()).await?;
        let bad = |why: String| channel_problem("channel_bad_answer", format!("WeChat Pay's answer to {PATH}: {why}"));
        if answer.status != 200 {
            return Err(channel_problem(
                "channel_declined",
                format!(
                    "WeChat Pay {PATH} answered HTTP {}: {}",
                    answer.status,
                    answer.body.chars().take(200).collect::<String>()
                ),
            ));
        }
        let value: Value = serde_json::from_str(&answer.body).map_err(|_| bad("not JSON".into()))?;
        let data = value.get("data").and_then(Value::as_array).ok_or_else(|| bad("no data".into()))?;
        let mut fetched = Vec::with_capacity(data.len());
        for item in data {
            let serial_no = item.get("serial_no").and_then(Value::as_str).ok_or_else(|| bad("no serial_no".into()))?;
            let sealed: Resource = item
                .get("encrypt_certificate")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .ok_or_else(|| bad("no encrypt_certificate".into()))?;
            let pem = sealed.open(keys.api_v3_key()).map_err(|e| bad(format!("certificate {serial_no}: {e}")))?;
            let pem = String::from_utf8(pem).map_err(|_| bad(format!("certificate {serial_no} is not PEM text")))?;
            let (key, serial) =
                VerifyingKey::from_certificate_pem(&pem).map_err(|e| bad(format!("certificate {serial_no}: {e}")))?;
            if !serial.eq_ignore_ascii_case(serial_no) {
                return Err(bad(format!("certificate {serial_no} carries serial {serial}")));
            }
            // A certificate past its expire_time (or before its effective_time) verifies nothing any more.
            let time = |name: &str| item.get(name).and_then(Value::as_str).map(rfc3339_unix);
            let now = wall_clock();
            let expired = match (time("effective_time"), time("expire_time")) {
                (Some(Err(why)), _) | (_, Some(Err(why))) => {
                    return Err(bad(format!("certificate {serial_no}: {why}")))
                }
                (from, until) => {
                    from.is_some_and(|f| f.is_ok_and(|f| now < f)) || until.is_some_and(|u| u.is_ok_and(|u| now > u))
                }
            };
            if expired {
                tracing::warn!(mch_id = %self.config.mch_id, serial = %serial, "expired WeChat Pay certificate skipped");
                continue;
            }
            fetched.push((serial, key));
        }
        let sig = ResponseSignature::from_headers(|n| answer.header(n))
            .map_err(|e| bad(format!("not signed: {}", e.message())))?;
        let key = fetched
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(&sig.serial))
            .map(|(_, k)| k)
            .ok_or_else(|| bad(format!("signed by '{}', none of the certificates it brings", sig.serial)))?;
        sig.verify(key, &answer.body, wall_clock()).map_err(|e| {
            tracing::warn!(mch_id = %self.config.mch_id, "WeChat Pay certificates with a bad signature refused");
            channel_problem("channel_bad_signature", format!("WeChat Pay's answer to {PATH} is not authentic: {e}"))
        })?;
        Ok(fetched)
    }
}

/// `yyyy-MM-ddTHH:mm:ss±hh:mm` (WeChat's times) as unix seconds.
fn rfc3339_unix(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not an RFC 3339 time");
    let b = text.as_bytes();
    if b.len() != 25 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[22] != b':' {
        return Err(bad());
    }
    let day = paygate_domain::reconcile::BillDate::parse("time", &text[..10]).map_err(|_| bad())?;
    let num = |r: std::ops::Range<usize>| text[r].parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
    let (h, m, sec, oh, om) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..22)?, num(23..25)?);
    let sign = match b[19] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(bad()),
    };
    if h > 23 || m > 59 || sec > 59 || oh > 23 || om > 59 {
        return Err(bad());
    }
    // BillDate::start is the day's midnight in Beijing; the UTC midnight of the same date is 8 h later.
    let utc_midnight = day.start() + paygate_domain::BEIJING_OFFSET_SECONDS;
    Ok(utc_midnight + h * 3600 + m * 60 + sec - sign * (oh * 3600 + om * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_times_read_as_unix_seconds() {
        assert_eq!(rfc3339_unix("2025-01-01T08:00:00+08:00"), Ok(1_735_689_600));
        assert_eq!(rfc3339_unix("2025-01-01T00:00:00+00:00"), Ok(1_735_689_600));
        assert_eq!(rfc3339_unix("2024-12-31T23:00:00-01:00"), Ok(1_735_689_600));
        for bad in ["2025-01-01 08:00:00+08:00", "2025-13-01T08:00:00+08:00", "2025-01-01T24:00:00+08:00", ""] {
            assert!(rfc3339_unix(bad).is_err(), "{bad}");
        }
    }

    /// Made by `openssl req -x509` (with extensions, a serial whose first nibble is 0); the signature of `m` by
    /// `openssl dgst -sha256 -sign` with its key.
    const CERT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIDXzCCAkegAwIBAgIUD1oOGyw9Tl9gcYKTpLXG1+j5ABEwDQYJKoZIhvcNAQEL\n\
BQAwPzELMAkGA1UEBhMCQ04xEzARBgNVBAoMClRlbnBheS5jb20xGzAZBgNVBAMM\n\
ElRlbnBheS5jb20gUm9vdCBDQTAeFw0yNjEyMDEwMjE3MTRaFw0zNjExMjgwMjE3\n\
MTRaMD8xCzAJBgNVBAYTAkNOMRMwEQYDVQQKDApUZW5wYXkuY29tMRswGQYDVQQD\n\
DBJUZW5wYXkuY29tIFJvb3QgQ0EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK\n\
AoIBAQCRWDuR9Q42OdBmyBAfRwq5THZlsqRczDvdY/9vtTUh21mBmZ6+JBbkPEio\n\
Y7ChP+61pg48NRWLUxhmBbntFmvziJw6NkYsdxllGSdh8hp77+YZDZIM71QQsdaV\n\
IWcdz5b3DaYhquVicAokYmaoMz17/DSRBUz16u5GorMcASd7hpvsHodQp0FS1bga\n\
3lv0MAtTHeU/7ywxmMDoAidbSt02Wd3JWL13/N6r9wPvKIMeVyCNLz0LJ+pLb8Pe\n\
ph03X5n03FaYD9uE/vRiMyfqX9Ktdi2UWEw0jKcNEfEAk3FJ0hOf/x7dWv6WmzWy\n\
k+FuxzHroJd6LwitydMBG6FmAYGbAgMBAAGjUzBRMB0GA1UdDgQWBBSEWoJyQzjQ\n\
ZCR3kKODQ9viPtsiQjAfBgNVHSMEGDAWgBSEWoJyQzjQZCR3kKODQ9viPtsiQjAP\n\
BgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQBCzlyjm0/q055aujl4\n\
pAVKib2XCZLMhAfz+0IXJk/+3jRoG+074XpgO+J6ncbHTOchbOfU56TMpuShMHey\n\
bPSMJYJNXQiD2hYsJBG5EsUvmLK1iP6wZTJRbhCpjW0OiBFRTGxN2++++s0SgYsK\n\
2J5oSZphQSdpLgiH2rvqkqLte9Rk7hvh5bf9cuonvePFfycvy3wkmfqrLRRjpO+x\n\
TLc99pSHQzUmRiFlUhAPvboOnvEStdwwJiTRW6egWAVUqoctVyTQsogS+EK+l+Oy\n\
9j34C2vDFz6Sn45FlK0dMnOnMCCjUsm8SsSGWnbfFeZowfH/CX7uo+7bM6mPsdKY\n\
VyG5\n\
-----END CERTIFICATE-----\n";
    const SIGNATURE_OF_M: &str = concat!(
        "QBGLX8sdYYD/pBrDe+xcUaTIDikwEJE9n4v0XSRjpld3pO3OYGGC1hMuLqF+6SVEJizDDTV2f3vLpH5igbOT2R6aouxn1YS/",
        "dPMSxSxY/YnHpxvYLjdTmRjgFDW+/Sel6OiJq0H+23vycLhwn5/RmsESCxE7mbmF7XXAJA2Mwh008CIYE8s1hxfMS854P0W5",
        "ngbji+zjLNZTrhJdOmjxUEiAtab3bRsy7R4UIeL4OXwL188WQC81+cd1+4UnOuTYgrDlVcGChGE0xyyUIM77XQ989LjKEn4V",
        "Aehq+bePxzNjxn6yIXDRVXVudwUhtoS+FTrwlPqD2rwd8D73XTYCdA==",
    );

    #[test]
    fn a_certificate_gives_its_key_and_serial() {
        let (key, serial) = VerifyingKey::from_certificate_pem(CERT).unwrap();
        assert_eq!(serial, "0F5A0E1B2C3D4E5F60718293A4B5C6D7E8F90011");
        key.verify(b"m", SIGNATURE_OF_M).expect("the subject key verifies what its private key signed");
        assert!(key.verify(b"n", SIGNATURE_OF_M).is_err());
        assert!(VerifyingKey::from_certificate_pem(&CERT.replace("MII", "MIJ")).is_err(), "a broken DER is refused");
        let key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(VerifyingKey::from_certificate_pem(key_pem).is_err(), "not a certificate");
    }
}
