//! The parsed request every face works from, and typed access to JSON bodies and query strings
//! that names the offending field on every error.

use crate::HttpResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use paygate_domain::Problem;
use serde_json::{Map, Value};
use std::net::SocketAddr;

pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct Incoming {
    pub method: Method,
    /// Path and query exactly as sent: what request signatures cover.
    pub raw_uri: String,
    pub path: String,
    pub query: Query,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

impl Incoming {
    pub fn new(parts: Parts, body: Bytes, peer: SocketAddr) -> Incoming {
        let raw_uri = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| parts.uri.path().to_string());
        Incoming {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: Query::parse(parts.uri.query().unwrap_or("")),
            raw_uri,
            headers: parts.headers,
            body,
            peer,
        }
    }

    pub fn segments(&self) -> Vec<String> {
        self.path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// This server as the client reached it, for links to sandbox pages.
    pub fn base_url(&self) -> String {
        if let Ok(url) = std::env::var("PAYGATE_PUBLIC_URL") {
            return url.trim_end_matches('/').to_string();
        }
        let host = self.header("host").filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)));
        format!("http://{}", host.map(str::to_string).unwrap_or_else(|| "127.0.0.1:8080".into()))
    }

    pub fn json_body(&self) -> Result<JsonBody, Problem> {
        JsonBody::parse(&self.body)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decoded `application/x-www-form-urlencoded` pairs, in order.
#[derive(Debug, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => (percent_decode(k), percent_decode(v)),
                    None => (percent_decode(pair), String::new()),
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, Problem> {
        self.get(name)
            .map(|v| v.trim().parse::<i64>().map_err(|_| Problem::invalid(name, format!("{name} must be an integer, got '{v}'."))))
            .transpose()
    }

    /// `true`/`false` in any case (the Python SDK sends `True`), and `1`/`0` as Ping++'s
    /// `canceled` uses.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, Problem> {
        self.get(name)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(Problem::invalid(name, format!("{name} must be true or false (or 1 or 0), got '{other}'."))),
            })
            .transpose()
    }
}

/// A JSON object body with typed, field-naming accessors.
pub struct JsonBody(Map<String, Value>);

impl JsonBody {
    pub fn parse(bytes: &[u8]) -> Result<JsonBody, Problem> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonBody(map)),
            Ok(_) => Err(Problem::new(paygate_domain::ProblemKind::InvalidRequest, "invalid_json", "The request body must be a JSON object.")),
            Err(e) => Err(Problem::new(paygate_domain::ProblemKind::InvalidRequest, "invalid_json", format!("The request body is not valid JSON: {e}."))),
        }
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, Problem> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Problem::invalid(name, format!("{name} must be a string."))),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<String, Problem> {
        self.string(name)?.ok_or_else(|| Problem::missing(name))
    }

    /// Integers only: `1.5`, `"100"` and numbers beyond i64 are refused, naming the field.
    pub fn int(&self, name: &str) -> Result<Option<i64>, Problem> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::Number(n)) if n.is_u64() => Err(Problem::invalid(name, format!("{name} is too large."))),
            Some(_) => Err(Problem::invalid(name, format!("{name} must be an integer."))),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, Problem> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Problem::invalid(name, format!("{name} must be true or false."))),
        }
    }

    pub fn required_int(&self, name: &str) -> Result<i64, Problem> {
        self.int(name)?.ok_or_else(|| Problem::missing(name))
    }

    pub fn value(&self, name: &str) -> Value {
        self.0.get(name).cloned().unwrap_or(Value::Null)
    }
}

pub fn json(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

pub fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    Response::builder().status(status).header("content-type", "text/plain; charset=utf-8").body(Full::new(Bytes::from_static(body.as_bytes()))).expect("static headers are valid")
}

pub fn too_large() -> HttpResponse {
    let body = serde_json::json!({"error": {"type": "invalid_request_error", "code": "request_too_large", "message": format!("The request body exceeds {MAX_BODY_BYTES} bytes."), "param": null}});
    json(StatusCode::PAYLOAD_TOO_LARGE, body.to_string().into_bytes())
}

pub fn internal_error() -> HttpResponse {
    let body = serde_json::json!({"error": {"type": "api_error", "code": "internal_error", "message": "An internal error occurred; it has been logged.", "param": null}});
    json(StatusCode::INTERNAL_SERVER_ERROR, body.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_brackets_and_plus() {
        let q = Query::parse("created%5Bgt%5D=10&uid=a+b&x=%E4%BD%A0&bad=%zz&trail=%4&py=True");
        assert_eq!(q.boolean("py").unwrap(), Some(true));
        assert_eq!(q.get("created[gt]"), Some("10"));
        assert_eq!(q.get("uid"), Some("a b"));
        assert_eq!(q.get("x"), Some("你"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("trail"), Some("%4"));
    }

    #[test]
    fn json_body_names_fields() {
        let b = JsonBody::parse(br#"{"amount": 1.5, "big": 18446744073709551615, "s": 3}"#).unwrap();
        assert_eq!(b.int("amount").unwrap_err().param.as_deref(), Some("amount"));
        assert_eq!(b.int("big").unwrap_err().param.as_deref(), Some("big"));
        assert_eq!(b.string("s").unwrap_err().param.as_deref(), Some("s"));
        assert_eq!(b.required_string("missing").unwrap_err().param.as_deref(), Some("missing"));
        assert!(JsonBody::parse(b"[1]").is_err());
        assert!(JsonBody::parse(b"{").is_err());
    }
}
