//! `v3::Resource` (AEAD_AES_256_GCM): `open` never panics on any fields and key; what `seal` makes (with a
//! 12-byte nonce) opens to the same plaintext, also after a JSON round trip; a changed ciphertext byte, associated
//! data, nonce, key or algorithm is refused.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v3::Resource;

#[derive(Arbitrary, Debug)]
enum Mutation {
    Ciphertext { at: u16, bits: u8 },
    Truncate { len: u16 },
    AssociatedData(String),
    Nonce(String),
    Key([u8; 32]),
    Algorithm(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    raw: (String, String, String, String),
    raw_key: Vec<u8>,
    key: [u8; 32],
    nonce: String,
    associated_data: String,
    plaintext: Vec<u8>,
    mutation: Mutation,
}

fuzz_target!(|input: Input| {
    let (algorithm, ciphertext, associated_data, nonce) = input.raw;
    let raw = Resource { algorithm, ciphertext, associated_data, nonce, original_type: None };
    let _ = raw.open(&input.raw_key);
    let _ = raw.open(&input.key);

    let sealed = match Resource::seal(&input.key, &input.nonce, &input.associated_data, &input.plaintext, "transaction")
    {
        Ok(sealed) => sealed,
        Err(_) => {
            assert_ne!(input.nonce.len(), 12, "sealing with a 12-byte nonce failed");
            return;
        }
    };
    assert_eq!(sealed.open(&input.key).as_deref(), Ok(input.plaintext.as_slice()), "seal -> open");
    let json = serde_json::to_string(&sealed).expect("a Resource serializes");
    let read: Resource = serde_json::from_str(&json).expect("a serialized Resource reads back");
    assert_eq!(read, sealed, "JSON round trip");

    let mut changed = sealed.clone();
    let mut key = input.key;
    let engine = base64::engine::general_purpose::STANDARD;
    match input.mutation {
        Mutation::Ciphertext { at, bits } => {
            let mut bytes = engine.decode(&sealed.ciphertext).expect("seal writes base64");
            let at = usize::from(at) % bytes.len();
            bytes[at] ^= bits.max(1);
            changed.ciphertext = engine.encode(&bytes);
        }
        Mutation::Truncate { len } => {
            let mut bytes = engine.decode(&sealed.ciphertext).expect("seal writes base64");
            bytes.truncate(usize::from(len) % bytes.len());
            changed.ciphertext = engine.encode(&bytes);
        }
        Mutation::AssociatedData(other) => changed.associated_data = other,
        Mutation::Nonce(other) => changed.nonce = other,
        Mutation::Key(other) => key = other,
        Mutation::Algorithm(other) => changed.algorithm = other,
    }
    if changed != sealed || key != input.key {
        assert!(changed.open(&key).is_err(), "a changed resource opened: {changed:?}");
    }
});
