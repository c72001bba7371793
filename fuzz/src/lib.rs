//! What the fuzz targets share: test-only keys and the signed messages the seed corpora hold, so the fuzzer
//! starts from input that verifies and every mutation of it must be refused.
//!
//! The keys here are made for fuzzing only (openssl, 2048-bit RSA) and guard nothing.

pub mod alipay;
pub mod notify;

use paygate_channels::wechat::v2::{self, Fields};
use paygate_channels::wechat::v3::{Authorization, RequestParts, ResponseSignature, SigningKey, VerifyingKey};
use std::sync::OnceLock;

/// The v2 API key of the seed notifications (the one WeChat's signature guide uses).
pub const API_V2_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// The APIv3 key the seed v3 notification's resource is sealed under.
pub const API_V3_KEY: &[u8; 32] = b"fuzzfuzzfuzzfuzzfuzzfuzzfuzz3232";

pub const PRIVATE_PEM: &str = include_str!("../keys/platform_private.pem");
pub const PUBLIC_PEM: &str = include_str!("../keys/platform_public.pem");

/// The seed v2 payment notification, signed (MD5) with [`API_V2_KEY`].
pub const V2_SIGNED_NOTIFICATION: &str = include_str!("../corpus/v2_parse_xml/pay_notify.xml");

/// The fields of [`V2_SIGNED_NOTIFICATION`], read once.
pub fn v2_signed_notification() -> &'static Fields {
    static FIELDS: OnceLock<Fields> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let fields = v2::parse_xml(V2_SIGNED_NOTIFICATION).expect("the seed notification parses");
        v2::verify(&fields, API_V2_KEY).expect("the seed notification is signed with API_V2_KEY");
        fields
    })
}

/// The request the seed `Authorization` header signs (fuzz/corpus/v3_authorization/).
pub const REQUEST_METHOD: &str = "POST";
pub const REQUEST_PATH: &str = "/v3/pay/transactions/native";
pub const REQUEST_BODY: &str = include_str!("../corpus/v3_authorization/request_body.json");
pub const REQUEST_TIMESTAMP: i64 = 1_554_208_460;
pub const REQUEST_NONCE: &str = "593BEC0C930BF1AFEB40B4A08C8FB242";

/// The answer the seed `Wechatpay-*` headers sign (fuzz/corpus/v3_response_signature/).
pub const RESPONSE_BODY: &str = "{\"prepay_id\":\"wx201410272009395522657a690389285100\"}";
pub const RESPONSE_TIMESTAMP: i64 = 1_554_209_980;
pub const RESPONSE_NONCE: &str = "c5ac7061fccab6bf3e254dcf98995b8c";
pub const RESPONSE_SERIAL: &str = "PUB_KEY_ID_0114232134912410000000000000";

pub fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_pem(PRIVATE_PEM).expect("fuzz/keys/platform_private.pem is a usable key"))
}

pub fn verifying_key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| VerifyingKey::from_pem(PUBLIC_PEM).expect("fuzz/keys/platform_public.pem is a usable key"))
}

pub fn request_parts() -> RequestParts<'static> {
    RequestParts { method: REQUEST_METHOD, path_and_query: REQUEST_PATH, body: REQUEST_BODY }
}

/// The seed request's `Authorization`, signed once per process (PKCS#1 v1.5 is deterministic, so it equals
/// the header in the corpus).
pub fn signed_request() -> &'static Authorization {
    static AUTH: OnceLock<Authorization> = OnceLock::new();
    AUTH.get_or_init(|| {
        let auth = Authorization::sign(
            signing_key(),
            "1230000109",
            "5157F09EFDC096DE15EBE81A47057A72",
            &request_parts(),
            REQUEST_TIMESTAMP,
            REQUEST_NONCE,
        )
        .expect("the fuzz key signs");
        // The committed seed is this very header, so the fuzzer starts from a request that verifies.
        let seed = include_str!("../corpus/v3_authorization/signed_request.txt");
        assert_eq!(Authorization::parse(seed).as_ref(), Ok(&auth), "the seed Authorization is the signed one");
        auth.verify(verifying_key(), &request_parts(), REQUEST_TIMESTAMP).expect("the seed Authorization verifies");
        auth
    })
}

/// The seed answer's `Wechatpay-*` headers.
pub fn signed_response() -> &'static ResponseSignature {
    static SIG: OnceLock<ResponseSignature> = OnceLock::new();
    SIG.get_or_init(|| {
        let sig =
            ResponseSignature::sign(signing_key(), RESPONSE_SERIAL, RESPONSE_BODY, RESPONSE_TIMESTAMP, RESPONSE_NONCE)
                .expect("the fuzz key signs");
        // The committed seed carries these headers and body, so the fuzzer starts from an answer that verifies.
        let seed = include_str!("../corpus/v3_response_signature/signed_answer.txt");
        let expected = format!("{}\n{}\n{}\n{}\n{RESPONSE_BODY}", sig.timestamp, sig.nonce, sig.signature, sig.serial);
        assert_eq!(seed, expected, "the seed answer is the signed one");
        sig.verify(verifying_key(), RESPONSE_BODY, RESPONSE_TIMESTAMP).expect("the seed answer verifies");
        sig
    })
}

/// Base64 decoding as the parsers do it (standard alphabet, surrounding whitespace trimmed), so targets compare
/// signatures and ciphertexts as bytes: two spellings of the same bytes are the same message.
pub fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()
}
