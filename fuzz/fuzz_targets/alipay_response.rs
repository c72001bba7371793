//! `alipay::extract_node` and `Response::parse` on any text (a `gateway.do` answer): never panic. A node cut out
//! is a trimmed slice of the body, and wherever serde_json also reads the body as an object, every member cut
//! out by brace matching parses to the value serde_json gives it. An answer that verifies under the fuzz key
//! carries, byte for byte, the node of one of the signed seed answers (fuzz/corpus/alipay_response/) and reads to
//! its fields; it is a success only if that node is the signed success; nothing verifies under another key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::alipay::{self, Response, ERROR_RESPONSE};
use paygate_fuzz::alipay::{signed_answers, verifying_key, METHOD};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // Parsed and verified once: the tamper checks below start from answers that verify.
    let seeds = signed_answers();
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let node_name = alipay::response_node_name(METHOD);
    let span = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    for name in [node_name.as_str(), ERROR_RESPONSE, "sign"] {
        if let Ok(Some(raw)) = alipay::extract_node(body, name) {
            let at = raw.as_ptr() as usize;
            assert!(span.contains(&at) && at + raw.len() <= span.end, "node {name} is not a slice of the body");
            // JSON whitespace only (str::trim would also take a form feed, which JSON does not skip).
            let json_ws = [' ', '\t', '\n', '\r'];
            let trimmed = !raw.starts_with(json_ws) && !raw.ends_with(json_ws);
            assert!(!raw.is_empty() && trimmed, "node {name} is {raw:?}");
        }
    }
    if let Ok(Value::Object(members)) = serde_json::from_str::<Value>(body) {
        for (name, value) in members.iter().take(32) {
            match alipay::extract_node(body, name) {
                Ok(Some(raw)) => {
                    let cut = serde_json::from_str::<Value>(raw)
                        .unwrap_or_else(|e| panic!("member {name:?} cut as {raw:?}, which is not JSON: {e}"));
                    assert_eq!(&cut, value, "member {name:?} cut as {raw:?}");
                }
                Ok(None) => panic!("member {name:?} of a JSON object not found"),
                // Refusals stricter than serde_json (a name twice, nesting past the depth limit) are fine.
                Err(_) => {}
            }
        }
    }

    assert!(
        Response::parse(body, METHOD, paygate_fuzz::verifying_key()).is_err(),
        "an answer verified under a key that signed nothing"
    );
    let Ok(answer) = Response::parse(body, METHOD, verifying_key()) else {
        return;
    };
    let seed = seeds
        .iter()
        .find(|s| s.raw == answer.raw)
        .unwrap_or_else(|| panic!("verified a node no seed signed: {:?}", answer.raw));
    assert_eq!(
        (&answer.fields, &answer.code, &answer.msg, &answer.sub_code, &answer.sub_msg),
        (&seed.fields, &seed.code, &seed.msg, &seed.sub_code, &seed.sub_msg),
        "the same node read differently"
    );
    if answer.is_success() {
        assert!(seed.is_success(), "a signed failure read as a success");
    }
    let under = if answer.is_error_node { ERROR_RESPONSE } else { node_name.as_str() };
    assert_eq!(alipay::extract_node(body, under).ok().flatten(), Some(answer.raw.as_str()), "verified another node");
});
