//! The daily trade bill (对账单), as the account's API version fetches it. v2 `/pay/downloadbill` answers the bill
//! text itself (unsigned, as WeChat sends it) or an XML `return_code FAIL`; v3 `GET /v3/bill/tradebill` answers a
//! signed `download_url` and the file's SHA1, and the file (unsigned) is believed only when its SHA1 matches.
//! Bills are asked for uncompressed: the file is kept as WeChat wrote it, and no inflater is needed to read it.

use super::v3::{call, declined, text_at, V3Keys};
use super::{channel_problem, wall_clock, Protocol, Unanswered, WechatPay};
use crate::net::{Download, MAX_DOWNLOAD_BYTES};
use crate::wechat::v2::{self, Fields};
use crate::wechat::v3::{random_token, Authorization, RequestParts};
use paygate_domain::Problem;
use secrecy::ExposeSecret;

impl WechatPay {
    /// The bill of every trade and refund of `date` (`yyyy-MM-dd`, Beijing), bill_type ALL, as downloaded.
    /// `Ok(None)`: WeChat has no bill for that day (nothing happened).
    pub async fn download_trade_bill(&self, date: &str) -> Result<Option<Vec<u8>>, Problem> {
        check_date(date)?;
        match &self.config.protocol {
            Protocol::V2 { key } => v2_bill(self, key.expose_secret(), date).await,
            Protocol::V3(keys) => v3_bill(self, keys, date).await,
        }
    }

    /// One download through the account's agent (never `/secapi/`): the body as bytes, bounded.
    async fn fetch(
        &self,
        method: &'static str,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Option<String>,
    ) -> Result<Download, Problem> {
        let agent = self.agent.as_ref().map_err(|why| Unanswered(why.clone()).problem())?;
        crate::net::download(agent, method, url, headers, body, MAX_DOWNLOAD_BYTES)
            .await
            .map_err(|why| Unanswered(why).problem())
    }
}

/// `yyyy-MM-dd` with digits where digits go; anything else never reaches WeChat.
pub(crate) fn check_date(date: &str) -> Result<(), Problem> {
    let b = date.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if !shaped {
        return Err(Problem::invalid("date", format!("The bill date '{date}' is not yyyy-MM-dd.")));
    }
    Ok(())
}

async fn v2_bill(pay: &WechatPay, key: &str, date: &str) -> Result<Option<Vec<u8>>, Problem> {
    let path = "/pay/downloadbill";
    let mut fields: Fields =
        [("bill_date", date.replace('-', "")), ("bill_type", "ALL".to_string())].into_iter().collect();
    fields.set("appid", pay.config.appid.as_str()).set("mch_id", pay.config.mch_id.as_str());
    fields.set("nonce_str", v2::nonce_str());
    let sign = v2::sign(&fields, key, v2::SignType::Md5);
    fields.set("sign", sign);
    let headers = vec![("Content-Type", "text/xml; charset=utf-8".to_string())];
    let url = format!("{}{path}", pay.config.api_base_url);
    let got = pay.fetch("POST", url, headers, Some(v2::render_xml(&fields))).await?;
    if got.status >= 500 {
        return Err(channel_problem("channel_unavailable", format!("WeChat Pay answered HTTP {}.", got.status)));
    }
    if got.status != 200 {
        return Err(channel_problem(
            "channel_refused",
            format!("WeChat Pay answered {path} with HTTP {}.", got.status),
        ));
    }
    let head = got.body.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |at| &got.body[at..]);
    if !(head.starts_with(b"<xml>") || head.starts_with(b"<?xml")) {
        if got.body.is_empty() {
            return Err(channel_problem("channel_bad_answer", format!("WeChat Pay's answer to {path} is empty")));
        }
        return Ok(Some(got.body));
    }
    // An XML answer is a refusal (never signed: it comes before anything is looked up).
    let text = std::str::from_utf8(&got.body).unwrap_or("");
    let answer = v2::parse_xml(text).map_err(|e| {
        channel_problem("channel_bad_answer", format!("WeChat Pay's answer to {path} is neither a bill nor XML: {e}"))
    })?;
    let message = answer.get("return_msg").unwrap_or("no return_msg");
    if answer.get("error_code") == Some("20002") || message.eq_ignore_ascii_case("No Bill Exist") {
        return Ok(None);
    }
    let code = answer.get("error_code").map(|c| format!(" ({c})")).unwrap_or_default();
    Err(channel_problem("channel_refused", format!("WeChat Pay refused {path}: {message}{code}")))
}

async fn v3_bill(pay: &WechatPay, keys: &V3Keys, date: &str) -> Result<Option<Vec<u8>>, Problem> {
    let path = format!("/v3/bill/tradebill?bill_date={date}&bill_type=ALL");
    let (status, got) = call(pay, keys, "GET", &path, None).await?;
    if status != 200 {
        if got.get("code").and_then(serde_json::Value::as_str) == Some("NO_STATEMENT_EXIST") {
            return Ok(None);
        }
        return Err(declined(&path, status, &got));
    }
    let url = text_at(&got, "download_url", &path)?;
    let hash_type = text_at(&got, "hash_type", &path)?;
    let hash_value = text_at(&got, "hash_value", &path)?;
    if !hash_type.eq_ignore_ascii_case("SHA1") {
        return Err(channel_problem("channel_bad_answer", format!("WeChat Pay's bill hash_type is {hash_type}")));
    }
    let signed_path = download_path(url, &pay.config.api_base_url)?;
    let parts = RequestParts { method: "GET", path_and_query: signed_path, body: "" };
    let auth = Authorization::sign(
        &keys.signing,
        &pay.config.mch_id,
        &keys.serial_no,
        &parts,
        wall_clock(),
        &random_token(32),
    )
    .map_err(Problem::from)?;
    let headers = vec![("Authorization", auth.header_value()), ("Accept", "*/*".to_string())];
    let file = pay.fetch("GET", url.to_string(), headers, None).await?;
    if file.status >= 500 {
        return Err(channel_problem("channel_unavailable", format!("WeChat Pay answered HTTP {}.", file.status)));
    }
    if file.status != 200 {
        return Err(channel_problem(
            "channel_declined",
            format!("WeChat Pay refused the bill file download (HTTP {}).", file.status),
        ));
    }
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &file.body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if !hex.eq_ignore_ascii_case(hash_value) {
        tracing::warn!(mch_id = %pay.config.mch_id, date, "WeChat bill file does not match its SHA1");
        return Err(channel_problem(
            "channel_bad_answer",
            format!("The bill file of {date} does not match the SHA1 WeChat Pay signed ({hash_value})."),
        ));
    }
    Ok(Some(file.body))
}

/// The path and query of a bill `download_url` (what its Authorization signs). https always; plain http only when
/// the account's own API base is http (a simulator or test setup).
fn download_path<'u>(url: &'u str, api_base_url: &str) -> Result<&'u str, Problem> {
    let bad = || channel_problem("channel_bad_answer", format!("WeChat Pay's bill download_url '{url}' is not usable"));
    let rest = match url.split_once("://") {
        Some(("https", rest)) => rest,
        Some(("http", rest)) if api_base_url.starts_with("http://") => rest,
        _ => return Err(bad()),
    };
    let at = rest.find('/').ok_or_else(bad)?;
    if at == 0 {
        return Err(bad());
    }
    Ok(&rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_download_urls_are_checked_before_any_call() {
        assert!(check_date("2026-11-30").is_ok());
        for bad in ["20261130", "2026-1-30", "2026-11-3x", "２０２６-11-30", ""] {
            assert_eq!(check_date(bad).unwrap_err().code, "invalid_parameter", "{bad}");
        }
        let https = "https://api.mch.weixin.qq.com/v3/billdownload/file?token=T";
        assert_eq!(download_path(https, "https://api.mch.weixin.qq.com").unwrap(), "/v3/billdownload/file?token=T");
        let http = "http://127.0.0.1:9/v3/billdownload/file?token=T";
        assert_eq!(download_path(http, "http://127.0.0.1:9").unwrap(), "/v3/billdownload/file?token=T");
        assert!(download_path(http, "https://api.mch.weixin.qq.com").is_err(), "no downgrade to http");
        assert!(download_path("ftp://x/y", "http://h").is_err());
        assert!(download_path("https://host-only", "https://h").is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn downloads_longer_than_the_limit_are_refused_not_cut() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/bill", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for _ in 0..2 {
                let Ok((mut stream, _)) = listener.accept() else { return };
                let _ = stream.read(&mut [0u8; 4096]);
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n0123456789");
            }
        });
        let net = crate::net::NetPolicy {
            allow_private: true,
            is_public: |_| true,
            connect_timeout: std::time::Duration::from_secs(2),
            read_timeout: std::time::Duration::from_secs(2),
        };
        let agent = crate::net::agent(net);
        let whole = crate::net::download(&agent, "GET", url.clone(), vec![], None, 10).await.unwrap();
        assert_eq!((whole.status, whole.body.as_slice()), (200, &b"0123456789"[..]));
        let why = crate::net::download(&agent, "GET", url, vec![], None, 9).await.unwrap_err();
        assert!(why.contains("larger than 9 bytes"), "{why}");
    }
}
