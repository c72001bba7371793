//! What the Alipay targets share: a test-only key pair (fuzz/keys/alipay_*.pem, made with openssl for fuzzing
//! only; it guards nothing) standing for both the Alipay key and the app key, and the signed seeds, checked once
//! per process so a target's "a mutation never verifies" check starts from input that does verify.

use paygate_channels::alipay::{self, Params, Response, SigningKey, VerifyingKey};
use std::sync::OnceLock;

pub const PRIVATE_PEM: &str = include_str!("../keys/alipay_private.pem");
pub const PUBLIC_PEM: &str = include_str!("../keys/alipay_public.pem");

/// The seed async notify (trade_status_sync), form-encoded and signed with the fuzz key.
pub const SIGNED_NOTIFY: &str = include_str!("../corpus/alipay_form/trade_success_notify.txt");
/// The seed `gateway.do` request (alipay.trade.precreate), form-encoded and signed with the fuzz key.
pub const SIGNED_REQUEST: &str = include_str!("../corpus/alipay_form/precreate_request.txt");

/// The method the seed answers are for.
pub const METHOD: &str = "alipay.trade.precreate";
/// Seed answers, each signed over its node's raw text: a success, a gateway-level `error_response` and a
/// business failure (spaces and newlines between members, as some gateways send).
pub const ANSWERS: [&str; 3] = [
    include_str!("../corpus/alipay_response/precreate_success.json"),
    include_str!("../corpus/alipay_response/error_response.json"),
    include_str!("../corpus/alipay_response/business_failed.json"),
];

pub fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_pem(PRIVATE_PEM).expect("fuzz/keys/alipay_private.pem is a usable key"))
}

pub fn verifying_key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| VerifyingKey::from_pem(PUBLIC_PEM).expect("fuzz/keys/alipay_public.pem is a usable key"))
}

/// The seed notify's fields, read and verified once.
pub fn signed_notify() -> &'static Params {
    static PARAMS: OnceLock<Params> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let params = alipay::parse_form(SIGNED_NOTIFY.as_bytes()).expect("the seed notify parses");
        alipay::verify_notify(&params, verifying_key()).expect("the seed notify is signed with the fuzz key");
        params
    })
}

/// The seed request's fields, read and verified once.
pub fn signed_request() -> &'static Params {
    static PARAMS: OnceLock<Params> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let params = alipay::parse_form(SIGNED_REQUEST.as_bytes()).expect("the seed request parses");
        alipay::verify_request(&params, verifying_key()).expect("the seed request is signed with the fuzz key");
        params
    })
}

/// The seed answers, parsed and verified once (in `ANSWERS` order).
pub fn signed_answers() -> &'static [Response] {
    static ANSWERS_PARSED: OnceLock<Vec<Response>> = OnceLock::new();
    ANSWERS_PARSED.get_or_init(|| {
        ANSWERS
            .iter()
            .map(|body| Response::parse(body, METHOD, verifying_key()).expect("a seed answer verifies"))
            .collect()
    })
}
