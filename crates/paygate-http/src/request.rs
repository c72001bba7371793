//! The parsed request every face works from, and typed access to JSON bodies and query strings
//! that names the offending field on every error.

use crate::HttpResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use paygate_domain::{Problem, ProblemKind};
use serde::de::DeserializeOwned;
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
        let raw_uri =
            parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| parts.uri.path().to_string());
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

    /// Path segments, percent-decoded (a `+` in a path is a plus, not a space).
    pub fn segments(&self) -> Vec<String> {
        self.path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode(s, false)).collect()
    }

    /// A header as text: UTF-8 is accepted (an `Idempotency-Key: 订单-1` is a key like any
    /// other); a value that is not UTF-8 reads as absent — use [`Incoming::header_text`] where
    /// silently ignoring it would be wrong.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }

    /// A header that must be UTF-8 text when present: otherwise a 400 naming it.
    pub fn header_text(&self, name: &str, shown_as: &str) -> Result<Option<&str>, Problem> {
        match self.headers.get(name) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v.as_bytes())
                .map(Some)
                .map_err(|_| Problem::invalid(shown_as, format!("The {shown_as} header must be UTF-8 text."))),
        }
    }

    /// Refuses what no field of any face can hold, before a handler sees it: control
    /// characters in a path segment, NUL anywhere in the query (PostgreSQL text cannot store
    /// it), other control characters in a query value except tab and line breaks.
    pub fn check_edge(&self, segments: &[String]) -> Result<(), Problem> {
        if let Some(seg) = segments.iter().find(|s| s.chars().any(char::is_control)) {
            let shown: String = seg.chars().filter(|c| !c.is_control()).take(40).collect();
            return Err(Problem::invalid("path", format!("The path segment '{shown}' contains a control character.")));
        }
        for (key, value) in &self.query.0 {
            if key.chars().any(char::is_control) {
                return Err(Problem::invalid("query", "A query parameter name contains a control character."));
            }
            if value.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
                return Err(Problem::invalid(key, format!("{key} contains a control character (such as NUL).")));
            }
        }
        Ok(())
    }

    /// This server as the client reached it, for links to sandbox pages.
    pub fn base_url(&self) -> String {
        if let Some(url) = public_url() {
            return url.to_string();
        }
        let host = self.header("host").filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)));
        format!("http://{}", host.map(str::to_string).unwrap_or_else(|| "127.0.0.1:8080".into()))
    }

    pub fn json_body(&self) -> Result<JsonBody, Problem> {
        JsonBody::parse(&self.body)
    }

    /// The body as a typed request (see [`typed_body`]).
    pub fn body_as<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        typed_body(&self.body)
    }
}

/// `PAYGATE_PUBLIC_URL`, read once: the base URL of sandbox pay pages behind a proxy.
fn public_url() -> Option<&'static str> {
    static URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    URL.get_or_init(|| std::env::var("PAYGATE_PUBLIC_URL").ok().map(|u| u.trim_end_matches('/').to_string())).as_deref()
}

/// `%XX` decoding; `plus_is_space` for form-encoded query strings only.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
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
                    Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
                    None => (percent_decode(pair, true), String::new()),
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
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| Problem::invalid(name, format!("{name} must be an integer, got '{v}'.")))
            })
            .transpose()
    }

    /// `true`/`false` in any case (the Python SDK sends `True`), and `1`/`0` as Ping++'s
    /// `canceled` uses.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, Problem> {
        self.get(name)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => {
                    Err(Problem::invalid(name, format!("{name} must be true or false (or 1 or 0), got '{other}'.")))
                }
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
            Ok(Value::Object(map)) => {
                for (key, value) in &map {
                    reject_nul(value, key)?;
                }
                Ok(JsonBody(map))
            }
            Ok(_) => Err(Problem::new(
                ProblemKind::InvalidRequest,
                "invalid_json",
                "The request body must be a JSON object.",
            )),
            Err(e) => Err(Problem::new(
                ProblemKind::InvalidRequest,
                "invalid_json",
                format!("The request body is not valid JSON: {e}."),
            )),
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

    pub fn value(&self, name: &str) -> Value {
        self.0.get(name).cloned().unwrap_or(Value::Null)
    }
}

/// A JSON object body as the request type `T`, with the errors [`JsonBody`] gives: an empty body
/// is `{}`, anything but a JSON object is `invalid_json`, a NUL anywhere is refused naming where
/// it is, and a field of the wrong type or a missing one is a 400 whose `param` is the field's
/// path (`receivers[0].amount`). Fields `T` does not know are ignored, as they always were.
pub fn typed_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let JsonBody(map) = JsonBody::parse(bytes)?;
    serde_path_to_error::deserialize(Value::Object(map))
        .map_err(|e| field_problem(&e.path().to_string(), &e.inner().to_string()))
}

/// Turns serde's account of a bad field into a problem naming it. serde's messages have fixed
/// forms (`missing field `x``, `invalid type: …, expected …`); the wire types' own messages
/// (e.g. [`crate::pingpp::bodies::Int`]'s "is too large") are completed with the field name.
fn field_problem(path: &str, message: &str) -> Problem {
    let at = |field: &str| if path == "." { field.to_string() } else { format!("{path}.{field}") };
    if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        return Problem::missing(&at(field));
    }
    if path == "." {
        return Problem::new(
            ProblemKind::InvalidRequest,
            "invalid_json",
            format!("The request body is invalid: {message}."),
        );
    }
    // A null where a value is required reads as absent, as it always did.
    if message.starts_with("invalid type: null") {
        return Problem::missing(path);
    }
    if let Some((_, expected)) = message.split_once(", expected ") {
        let expected = match expected {
            "a sequence" => "an array",
            "a map" => "an object",
            "a boolean" => "true or false",
            other => other,
        };
        return Problem::invalid(path, format!("{path} must be {expected}."));
    }
    Problem::invalid(path, format!("{path} {message}."))
}

/// Refuses a NUL character in any string (or key) of `value`, naming where it is
/// (`receivers[0].account`): no text field can hold one, and PostgreSQL cannot store it.
pub fn reject_nul(value: &Value, at: &str) -> Result<(), Problem> {
    let found = |path: &str| Problem::invalid(path, format!("{path} contains a NUL character."));
    match value {
        Value::String(s) if s.contains('\0') => Err(found(at)),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, v)| reject_nul(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let path = format!("{at}.{k}");
            if k.contains('\0') {
                return Err(found(&path));
            }
            reject_nul(v, &path)
        }),
        _ => Ok(()),
    }
}

/// A JSON object body for faces that read it as a map (the signed envelopes), NUL refused.
pub fn json_object(bytes: &[u8]) -> Option<Result<Map<String, Value>, Problem>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Some(map.iter().try_for_each(|(k, v)| reject_nul(v, k)).map(|()| map)),
        _ => None,
    }
}

pub fn json(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    // Every API answer goes through here: a static header value, nothing parsed or copied.
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let json = hyper::header::HeaderValue::from_static("application/json; charset=utf-8");
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, json);
    response
}

pub fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static headers are valid")
}

pub fn text_owned(status: StatusCode, body: String) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

pub fn too_large() -> Problem {
    Problem::new(
        ProblemKind::Http(413),
        "request_too_large",
        format!("The request body exceeds {MAX_BODY_BYTES} bytes."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_brackets_and_plus() {
        assert_eq!(percent_decode("a+b%20c", false), "a+b c");
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
        let nul = JsonBody::parse(br#"{"receivers": [{"account": "a\u0000b"}]}"#).err().unwrap();
        assert_eq!(nul.param.as_deref(), Some("receivers[0].account"));
        assert!(JsonBody::parse(b"{").is_err());
    }
}
