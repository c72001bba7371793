//! A v3 notification body read the way the notification handler reads it (paygate-core `wechat_notify_v3`):
//! JSON, its `resource` as `v3::Resource`, opened under the APIv3 key, the plaintext as JSON. Never panics; a
//! `Resource` that reads renders to JSON that reads back the same; a resource opens only if sealing what it opened
//! to, with its nonce and associated data, gives back its ciphertext bytes (nothing unauthenticated gets in).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v3::Resource;
use paygate_fuzz::{base64_bytes, API_V3_KEY};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The resource on its own, as bytes.
    let _ = serde_json::from_slice::<Resource>(data);
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(resource) = event.get("resource").cloned().and_then(|r| serde_json::from_value::<Resource>(r).ok()) else {
        return;
    };
    let json = serde_json::to_string(&resource).expect("a Resource serializes");
    let read: Resource = serde_json::from_str(&json).expect("a serialized Resource reads back");
    assert_eq!(read, resource, "JSON round trip");
    let Ok(plain) = resource.open(API_V3_KEY) else {
        return;
    };
    let again = Resource::seal(API_V3_KEY, &resource.nonce, &resource.associated_data, &plain, "x")
        .expect("what opened seals again");
    assert_eq!(
        base64_bytes(&again.ciphertext),
        base64_bytes(&resource.ciphertext),
        "opened a ciphertext that is not what sealing its plaintext gives"
    );
    let _ = serde_json::from_slice::<Value>(&plain);
});
