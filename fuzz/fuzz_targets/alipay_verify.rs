//! `alipay::verify_notify` and `verify_request` against structured tampering: a message signed with the fuzz key
//! (`sign_notify` / `sign_request`) verifies, also after `encode_form` -> `parse_form`; after any one mutation (a
//! value, a name, an added or removed field, the `sign` or one of its characters, `sign_type`, `charset`, or
//! verifying with another key) it is accepted only if what is signed and the signature bytes did not change.
//! Also both verifiers on arbitrary fields never panic.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use paygate_channels::alipay::{self, Params, MAX_FORM_BYTES, MAX_FORM_FIELDS, SIGN_TYPE};
use paygate_fuzz::alipay::{signing_key, verifying_key};
use paygate_fuzz::base64_bytes;

#[derive(Arbitrary, Debug)]
enum Mutation {
    SetValue {
        index: u8,
        value: String,
    },
    Rename {
        index: u8,
        name: String,
    },
    Add {
        name: String,
        value: String,
    },
    Remove {
        index: u8,
    },
    Sign(String),
    FlipSign {
        index: u8,
        to: u8,
    },
    SignType(Option<String>),
    Charset(Option<String>),
    /// Verify with the WeChat fuzz platform key, which signed nothing here.
    OtherKey,
}

#[derive(Arbitrary, Debug)]
struct Input {
    fields: Vec<(String, String)>,
    request: bool,
    mutation: Mutation,
}

fn nth_name(params: &Params, index: u8) -> Option<String> {
    let n = params.len();
    (n > 0).then(|| params.keys().nth(usize::from(index) % n).cloned()).flatten()
}

fn set_or_remove(params: &mut Params, name: &str, value: Option<String>) {
    match value {
        Some(v) => params.insert(name.to_string(), v),
        None => params.remove(name),
    };
}

fuzz_target!(|input: Input| {
    let mut signed: Params = input.fields.into_iter().take(64).collect();
    let verify = |p: &Params, key| {
        if input.request {
            alipay::verify_request(p, key)
        } else {
            alipay::verify_notify(p, key)
        }
    };
    let content = |p: &Params| if input.request { alipay::request_content(p) } else { alipay::notify_content(p) };
    // Whatever arrives, verify answers.
    let _ = verify(&signed, verifying_key());

    // A charset other than utf-8 is refused by verify_notify whatever the signature: sign a utf-8 one.
    if signed.get("charset").is_some_and(|c| !c.is_empty() && !c.eq_ignore_ascii_case(alipay::CHARSET)) {
        signed.remove("charset");
    }
    let result = if input.request {
        alipay::sign_request(&mut signed, signing_key())
    } else {
        alipay::sign_notify(&mut signed, signing_key())
    };
    result.expect("the fuzz key signs");
    verify(&signed, verifying_key()).unwrap_or_else(|e| panic!("a message we signed does not verify: {e}"));
    let wire = alipay::encode_form(&signed);
    let form_safe = signed.keys().all(|k| !k.is_empty() && !k.contains('\0'));
    if form_safe && wire.len() <= MAX_FORM_BYTES && signed.len() <= MAX_FORM_FIELDS {
        let parsed = alipay::parse_form(wire.as_bytes()).expect("a signed message encodes to a form that parses");
        verify(&parsed, verifying_key()).expect("a signed message verifies after a form round trip");
    }

    let mut mutated = signed.clone();
    let mut other_key = false;
    match input.mutation {
        Mutation::SetValue { index, value } => {
            if let Some(name) = nth_name(&mutated, index) {
                mutated.insert(name, value);
            }
        }
        Mutation::Rename { index, name } => {
            if let Some(old) = nth_name(&mutated, index) {
                if !mutated.contains_key(&name) {
                    if let Some(v) = mutated.remove(&old) {
                        mutated.insert(name, v);
                    }
                }
            }
        }
        Mutation::Add { name, value } => {
            mutated.entry(name).or_insert(value);
        }
        Mutation::Remove { index } => {
            if let Some(name) = nth_name(&mutated, index) {
                mutated.remove(&name);
            }
        }
        Mutation::Sign(sign) => {
            mutated.insert("sign".into(), sign);
        }
        Mutation::FlipSign { index, to } => {
            let mut sign = mutated.get("sign").cloned().unwrap_or_default().into_bytes();
            let at = usize::from(index) % sign.len().max(1);
            if let Some(b) = sign.get_mut(at) {
                *b = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= "[usize::from(to) % 66];
            }
            mutated.insert("sign".into(), String::from_utf8_lossy(&sign).into_owned());
        }
        Mutation::SignType(value) => set_or_remove(&mut mutated, "sign_type", value),
        Mutation::Charset(value) => set_or_remove(&mut mutated, "charset", value),
        Mutation::OtherKey => other_key = true,
    }

    let key = if other_key { paygate_fuzz::verifying_key() } else { verifying_key() };
    if verify(&mutated, key).is_ok() {
        assert!(!other_key, "verified under a key that signed nothing");
        assert_eq!(content(&mutated), content(&signed), "verified a changed message: {signed:?} -> {mutated:?}");
        let sign_of = |p: &Params| p.get("sign").and_then(|s| base64_bytes(s));
        assert_eq!(sign_of(&mutated), sign_of(&signed), "verified another signature");
        if input.request {
            assert_eq!(mutated.get("sign_type").map(String::as_str), Some(SIGN_TYPE), "verified another sign_type");
        }
    }
});
