//! Gateway responses: `{"<method>_response": {…}, "sign": "…"}` (or `error_response`). The signature covers
//! the exact bytes of the node as Alipay sent them, so the node is cut out of the body by brace matching that
//! knows strings and escapes, and verified as is: re-serialising would change key order, spacing or escapes.

use super::money::shorten;
use super::{AlipayError, VerifyingKey, CODE_SUCCESS};
use serde_json::{Map, Value};

/// The node of gateway-level failures (bad app_id, bad signature…), whatever the method.
pub const ERROR_RESPONSE: &str = "error_response";

/// The largest response body read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Deeper nesting than this is refused rather than walked.
const MAX_DEPTH: usize = 64;

/// `alipay.trade.query` → `alipay_trade_query_response`.
pub fn response_node_name(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// A verified response node.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The node's exact text, as signed.
    pub raw: String,
    /// The node parsed.
    pub fields: Map<String, Value>,
    pub code: String,
    pub msg: String,
    pub sub_code: Option<String>,
    pub sub_msg: Option<String>,
    /// Whether the node was `error_response` rather than the method's own.
    pub is_error_node: bool,
}

impl Response {
    /// Cuts the method's node (or `error_response`) out of `body`, verifies `sign` over its raw text with the
    /// Alipay public key, and parses it. An unsigned or wrongly signed body is refused, success or not.
    pub fn parse(body: &str, method: &str, key: &VerifyingKey) -> Result<Response, AlipayError> {
        let name = response_node_name(method);
        let members = top_level(body)?;
        let find = |n: &str| members.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
        let (raw, is_error_node) = match (find(&name), find(ERROR_RESPONSE)) {
            (Some(raw), _) => (raw, false),
            (None, Some(raw)) => (raw, true),
            (None, None) => return Err(AlipayError::Malformed(format!("response has no {name} or {ERROR_RESPONSE}"))),
        };
        let sign = match find("sign").map(serde_json::from_str::<Value>) {
            Some(Ok(Value::String(s))) if !s.is_empty() => s,
            Some(_) => return Err(AlipayError::BadSignature("response sign is not a string".into())),
            None => return Err(AlipayError::BadSignature("response sign is missing".into())),
        };
        key.verify(raw.as_bytes(), &sign)?;
        let fields = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            _ => return Err(AlipayError::Malformed(format!("{name} is not a JSON object"))),
        };
        let text = |f: &str| fields.get(f).and_then(Value::as_str).map(str::to_string);
        let code = text("code").ok_or_else(|| AlipayError::Malformed(format!("{name}.code is missing")))?;
        Ok(Response {
            raw: raw.to_string(),
            code,
            msg: text("msg").unwrap_or_default(),
            sub_code: text("sub_code"),
            sub_msg: text("sub_msg"),
            fields,
            is_error_node,
        })
    }

    pub fn is_success(&self) -> bool {
        !self.is_error_node && self.code == CODE_SUCCESS
    }

    /// A string field of the node.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }
}

/// The raw text of the value of top-level member `name` of the JSON object `body`, if present.
pub fn extract_node<'a>(body: &'a str, name: &str) -> Result<Option<&'a str>, AlipayError> {
    Ok(top_level(body)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
}

/// Every member of the top-level object: (decoded name, raw value text). Values that are objects must have
/// balanced braces outside strings; a name twice is refused (which of the two was signed would be a guess).
fn top_level(body: &str) -> Result<Vec<(String, &str)>, AlipayError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(AlipayError::Malformed(format!(
            "response is {} bytes; the limit is {MAX_RESPONSE_BYTES}",
            body.len()
        )));
    }
    let b = body.as_bytes();
    let bad =
        |what: &str, at: usize| AlipayError::Malformed(format!("response is not a JSON object: {what} at byte {at}"));
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(bad("expected '{'", i));
    }
    i = skip_ws(b, i + 1);
    let mut members: Vec<(String, &str)> = Vec::new();
    if b.get(i) == Some(&b'}') {
        return finish(b, i + 1, members);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(bad("expected a member name", i));
        }
        let end = string_end(b, i).ok_or_else(|| bad("unterminated string", i))?;
        let name: String = serde_json::from_str(&body[i..end]).map_err(|_| bad("bad member name", i))?;
        i = skip_ws(b, end);
        if b.get(i) != Some(&b':') {
            return Err(bad("expected ':'", i));
        }
        let start = skip_ws(b, i + 1);
        let stop = value_end(b, start).ok_or_else(|| bad("bad value", start))?;
        if members.iter().any(|(k, _)| *k == name) {
            return Err(AlipayError::Malformed(format!("response member {} appears twice", shorten(&name))));
        }
        members.push((name, &body[start..stop]));
        i = skip_ws(b, stop);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return finish(b, i + 1, members),
            _ => return Err(bad("expected ',' or '}'", i)),
        }
    }
}

fn finish<'a>(b: &[u8], at: usize, members: Vec<(String, &'a str)>) -> Result<Vec<(String, &'a str)>, AlipayError> {
    let rest = skip_ws(b, at);
    if rest != b.len() {
        return Err(AlipayError::Malformed(format!("response has text after its object at byte {rest}")));
    }
    Ok(members)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `b[start]` is `"`: the index just past the closing quote, skipping escaped characters.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
    None
}

/// The index just past the JSON value starting at `start`: objects and arrays by bracket matching (strings and
/// their escapes skipped), strings to their closing quote, scalars to the next delimiter.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let mut stack: Vec<u8> = Vec::new();
            let mut i = start;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    open @ (b'{' | b'[') => {
                        if stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        stack.push(if open == b'{' { b'}' } else { b']' });
                    }
                    close @ (b'}' | b']') => {
                        if stack.pop()? != close {
                            return None;
                        }
                        if stack.is_empty() {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let mut i = start;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}
