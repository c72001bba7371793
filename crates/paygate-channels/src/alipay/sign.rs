//! RSA2 signatures of gateway requests and async notifications, and the urlencoded form both travel in.
//!
//! Requests sign every parameter but `sign` (so `sign_type` is covered); notifications sign every parameter but
//! `sign` and `sign_type`. Either way empty values are dropped, names sorted by byte order, and `k=v` joined by
//! `&` with raw values: URL-encoding happens on the wire only.

use super::money::{format_timestamp, shorten};
use super::{AlipayError, CHARSET, SIGN_TYPE};
use crate::rsa::{SigningKey, VerifyingKey};
use serde_json::Value;
use std::collections::BTreeMap;

/// Parameters by name; a `BTreeMap` keeps them in the byte order the signature wants.
pub type Params = BTreeMap<String, String>;

/// The largest form body `parse_form` reads (Alipay's notifications are a few KB).
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// The most fields `parse_form` accepts.
pub const MAX_FORM_FIELDS: usize = 256;

fn content(params: &Params, skip: &[&str]) -> String {
    let mut out = String::new();
    for (k, v) in params.iter().filter(|(k, v)| !v.is_empty() && !skip.contains(&k.as_str())) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// What a request's signature covers: every non-empty parameter but `sign`.
pub fn request_content(params: &Params) -> String {
    content(params, &["sign"])
}

/// What a notification's signature covers: every non-empty parameter but `sign` and `sign_type`.
pub fn notify_content(params: &Params) -> String {
    content(params, &["sign", "sign_type"])
}

/// Signs a request in place: sets `sign_type=RSA2` (it is covered) and then `sign`.
pub fn sign_request(params: &mut Params, key: &SigningKey) -> Result<(), AlipayError> {
    params.remove("sign");
    params.insert("sign_type".into(), SIGN_TYPE.into());
    let sign = key.sign(request_content(params).as_bytes())?;
    params.insert("sign".into(), sign);
    Ok(())
}

/// Checks a request's `sign` (the simulator's side): `sign_type` must be RSA2.
pub fn verify_request(params: &Params, key: &VerifyingKey) -> Result<(), AlipayError> {
    match params.get("sign_type").map(String::as_str) {
        Some(SIGN_TYPE) => {}
        other => {
            return Err(AlipayError::BadSignature(format!(
                "sign_type is {}, not {SIGN_TYPE}",
                other.map_or("missing".to_string(), |s| format!("'{}'", shorten(s)))
            )))
        }
    }
    let sign = signature_of(params)?;
    Ok(key.verify(request_content(params).as_bytes(), sign)?)
}

/// Signs a notification in place with the Alipay key (the simulator's side): `sign_type=RSA2` is sent but
/// not covered.
pub fn sign_notify(params: &mut Params, key: &SigningKey) -> Result<(), AlipayError> {
    params.remove("sign");
    params.insert("sign_type".into(), SIGN_TYPE.into());
    let sign = key.sign(notify_content(params).as_bytes())?;
    params.insert("sign".into(), sign);
    Ok(())
}

/// Checks a notification's `sign` with the Alipay public key. A `sign_type` other than RSA2 and a `charset`
/// other than utf-8 are refused (the form was decoded as UTF-8).
pub fn verify_notify(params: &Params, key: &VerifyingKey) -> Result<(), AlipayError> {
    if let Some(t) = params.get("sign_type").filter(|t| !t.is_empty() && t.as_str() != SIGN_TYPE) {
        return Err(AlipayError::BadSignature(format!("sign_type '{}' is not {SIGN_TYPE}", shorten(t))));
    }
    if let Some(c) = params.get("charset").filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case(CHARSET)) {
        return Err(AlipayError::Malformed(format!("charset '{}' is not {CHARSET}", shorten(c))));
    }
    let sign = signature_of(params)?;
    Ok(key.verify(notify_content(params).as_bytes(), sign)?)
}

fn signature_of(params: &Params) -> Result<&str, AlipayError> {
    params
        .get("sign")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AlipayError::BadSignature("sign is missing".into()))
}

/// A signed gateway request: the common parameters (`app_id`, `method`, `format=JSON`, `charset=utf-8`,
/// `sign_type=RSA2`, `timestamp` in Beijing time, `version=1.0`), `biz_content` as compact JSON, then `extra`
/// (`notify_url`, `return_url`, `app_auth_token`…; empty values are left out), signed with the app key.
pub fn build_request(
    app_id: &str,
    method: &str,
    biz_content: &Value,
    extra: &[(&str, &str)],
    timestamp: i64,
    key: &SigningKey,
) -> Result<Params, AlipayError> {
    let mut params = Params::new();
    for (k, v) in [("app_id", app_id), ("method", method), ("format", "JSON"), ("charset", CHARSET), ("version", "1.0")]
    {
        params.insert(k.into(), v.into());
    }
    params.insert("timestamp".into(), format_timestamp(timestamp));
    params.insert("biz_content".into(), biz_content.to_string());
    for (k, v) in extra.iter().filter(|(_, v)| !v.is_empty()) {
        params.insert((*k).into(), (*v).into());
    }
    sign_request(&mut params, key)?;
    Ok(params)
}

/// `application/x-www-form-urlencoded` of one value: unreserved bytes kept, everything else `%XX` (UTF-8).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The wire form of `params`: `k=v&…` with names and values URL-encoded (the `order_string` of app pay, a
/// POST body, or a GET query).
pub fn encode_form(params: &Params) -> String {
    params.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect::<Vec<_>>().join("&")
}

/// An auto-submitting HTML form that POSTs `params` to `gateway` (page and wap pay, as Alipay's SDKs render).
pub fn page_form(gateway: &str, params: &Params) -> String {
    let mut html =
        format!("<form name=\"punchout_form\" method=\"post\" action=\"{}?charset=utf-8\">\n", html_escape(gateway));
    for (k, v) in params {
        html.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", html_escape(k), html_escape(v)));
    }
    html.push_str("<input type=\"submit\" value=\"立即支付\" style=\"display:none\" >\n</form>\n");
    html.push_str("<script>document.forms[0].submit();</script>");
    html
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Decodes `%XX` escapes (UTF-8), and `+` as a space when `plus_as_space` (form bodies). A bad escape or
/// bytes that are not UTF-8 are refused.
pub fn percent_decode(text: &str, plus_as_space: bool) -> Result<String, AlipayError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                // Two hex digits exactly: `from_str_radix` alone would also take a sign (`%+1`).
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| {
                    AlipayError::Malformed(format!("'{}' has a bad % escape at byte {i}", shorten(text)))
                })?;
                out.push(byte);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| AlipayError::Malformed(format!("'{}' is not UTF-8", shorten(text))))
}

/// Reads an urlencoded form body (a notification, or a `gateway.do` POST): at most `MAX_FORM_BYTES` and
/// `MAX_FORM_FIELDS`, every name once, names non-empty, all of it UTF-8.
pub fn parse_form(body: &[u8]) -> Result<Params, AlipayError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(AlipayError::Malformed(format!(
            "form body is {} bytes; the limit is {MAX_FORM_BYTES}",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body).map_err(|_| AlipayError::Malformed("form body is not UTF-8".into()))?;
    let mut params = Params::new();
    for (n, pair) in text.split('&').filter(|p| !p.is_empty()).enumerate() {
        if n >= MAX_FORM_FIELDS {
            return Err(AlipayError::Malformed(format!("form has more than {MAX_FORM_FIELDS} fields")));
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name, true)?;
        if name.is_empty() {
            return Err(AlipayError::Malformed("form has a field without a name".into()));
        }
        if name.contains('\0') {
            return Err(AlipayError::Malformed("form field name contains NUL".into()));
        }
        let value = percent_decode(value, true)?;
        if params.contains_key(&name) {
            return Err(AlipayError::Malformed(format!("form field {} appears twice", shorten(&name))));
        }
        params.insert(name, value);
    }
    Ok(params)
}
