//! Clients of the signed and 知晓云 faces as the tests write them: the cashier/SaaS signature
//! scheme implemented here from docs/cashier.md (not paygate's code), and an hserve request as
//! the SDK sends it.
#![allow(dead_code)]

use super::TestServer;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// Sorted `k=v` of non-empty fields but `sign`, joined by `&` (nested values as compact JSON).
pub fn canonical(fields: &Map<String, Value>) -> String {
    let mut pairs: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| *k != "sign")
        .map(|(k, v)| (k.clone(), if let Value::String(s) = v { s.clone() } else { v.to_string() }))
        .filter(|(_, v)| !v.is_empty() && v != "null")
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

pub fn md5_sign(fields: &Map<String, Value>, key: &str) -> String {
    Md5::digest(format!("{}&key={key}", canonical(fields)).as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hmac_sign(fields: &Map<String, Value>, key: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(canonical(fields).as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// An hserve request as the SDK sends it: client id, and a session token or secret key.
pub fn hs(s: &TestServer, method: &str, client_id: &str, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Hydrogen-r1 {token}");
    let mut headers = vec![("x-hydrogen-client-id", client_id)];
    if !token.is_empty() {
        headers.push(("authorization", auth.as_str()));
    }
    s.call(method, "", path, body.map(|b| b.to_string()), &headers)
}
