//! `v2::verify` (MD5 and HMAC-SHA256): a message signed with a key verifies (also after an XML round trip when its
//! names are XML-safe); after any one mutation (a value, a name, an added or removed field, the `sign`, the
//! `sign_type`, the key) it is accepted only if what is signed did not change. Also `verify` on arbitrary fields
//! never panics.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v2::{self, Fields, SignType};

#[derive(Arbitrary, Debug)]
enum Mutation {
    SetValue { index: u8, value: String },
    Rename { index: u8, name: String },
    Add { name: String, value: String },
    Remove { index: u8 },
    Sign(String),
    FlipSign { index: u8, to: u8 },
    SignType(Option<String>),
    Key(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    fields: Vec<(String, String)>,
    key: String,
    hmac: bool,
    mutation: Mutation,
}

fn nth_name(fields: &Fields, index: u8) -> Option<String> {
    let n = fields.len();
    (n > 0).then(|| fields.iter().nth(usize::from(index) % n).map(|(k, _)| k.to_string())).flatten()
}

fuzz_target!(|input: Input| {
    // Whatever arrives, verify answers.
    let raw: Fields = input.fields.iter().cloned().collect();
    let _ = v2::verify(&raw, &input.key);

    let mut signed = raw;
    signed.remove("sign");
    signed.remove("sign_type");
    let sign_type = if input.hmac { SignType::HmacSha256 } else { SignType::Md5 };
    if input.hmac {
        signed.set("sign_type", "HMAC-SHA256");
    }
    v2::sign_in_place(&mut signed, &input.key).expect("sign_type is one we set");
    v2::verify(&signed, &input.key).expect("a message we signed verifies");
    v2::verify_with(&signed, &input.key, sign_type).expect("a message we signed verifies with its sign type");
    // render_xml writes names as given; only XML-safe ones (all parse_xml accepts) survive a round trip.
    let xml_safe = signed
        .iter()
        .all(|(k, _)| !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if xml_safe && signed.len() <= v2::MAX_FIELDS {
        let parsed = v2::parse_xml(&v2::render_xml(&signed)).expect("a message with XML-safe names renders and parses");
        v2::verify(&parsed, &input.key).expect("a signed message verifies after an XML round trip");
    }

    let mut mutated = signed.clone();
    let mut key = input.key.clone();
    match input.mutation {
        Mutation::SetValue { index, value } => {
            if let Some(name) = nth_name(&mutated, index) {
                mutated.set(name, value);
            }
        }
        Mutation::Rename { index, name } => {
            if let Some(old) = nth_name(&mutated, index) {
                if mutated.get(&name).is_none() {
                    let pairs: Vec<(String, String)> = mutated
                        .into_vec()
                        .into_iter()
                        .map(|(k, v)| if k == old { (name.clone(), v) } else { (k, v) })
                        .collect();
                    mutated = pairs.into_iter().collect();
                }
            }
        }
        Mutation::Add { name, value } => {
            if mutated.get(&name).is_none() {
                mutated.set(name, value);
            }
        }
        Mutation::Remove { index } => {
            if let Some(name) = nth_name(&mutated, index) {
                mutated.remove(&name);
            }
        }
        Mutation::Sign(sign) => {
            mutated.set("sign", sign);
        }
        Mutation::FlipSign { index, to } => {
            let mut sign = mutated.get("sign").unwrap_or_default().as_bytes().to_vec();
            let at = usize::from(index) % sign.len().max(1);
            if let Some(b) = sign.get_mut(at) {
                *b = b"0123456789ABCDEFabcdefXYZ"[usize::from(to) % 25];
            }
            mutated.set("sign", String::from_utf8_lossy(&sign).into_owned());
        }
        Mutation::SignType(value) => match value {
            Some(v) => {
                mutated.set("sign_type", v);
            }
            None => {
                mutated.remove("sign_type");
            }
        },
        Mutation::Key(other) => key = other,
    }

    if v2::verify(&mutated, &key).is_ok() {
        let mutated_type = SignType::of(&mutated).expect("verify accepted the sign_type");
        assert_eq!(mutated_type, sign_type, "verify accepted a message whose sign type changed: {mutated:?}");
        assert_eq!(
            v2::string_to_sign(&mutated, &key),
            v2::string_to_sign(&signed, &input.key),
            "verify accepted a message whose signed content changed: {signed:?} -> {mutated:?}"
        );
        assert_eq!(
            mutated.get("sign").map(str::to_ascii_uppercase),
            signed.get("sign").map(str::to_string),
            "verify accepted another sign"
        );
        if sign_type == SignType::HmacSha256 {
            assert_eq!(key, input.key, "HMAC-SHA256 verified under another key");
        }
    }
});
