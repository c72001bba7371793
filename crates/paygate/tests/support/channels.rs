//! What the real-channel stories (WeChat Pay, Alipay against their simulators) share: test RSA keys, the master
//! key their channel accounts are sealed under, the simulators' `/sim/…` control API, and waiting for an
//! asynchronous notification to land.

use base64::Engine as _;
use paygate_core::secret_box::MasterKeys;
use paygate_core::Paygate;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// (merchant private PEM, merchant public PEM, channel-platform private PEM), RSA 2048, made once per test
/// binary (generating a key takes a while in a debug build).
pub fn rsa_pems() -> &'static (String, String, String) {
    static PEMS: OnceLock<(String, String, String)> = OnceLock::new();
    PEMS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let key = || rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let (merchant, platform) = (key(), key());
        (
            merchant.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            merchant.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
            platform.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        )
    })
}

/// Gives the server a master key, so channel accounts can be set.
pub fn set_master_key(app: &Paygate) {
    let master = format!("k1:{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    app.set_master_keys(MasterKeys::parse(&master).unwrap());
}

/// A simulator control call (`POST {base}{path}` with a JSON body); an error status still answers its JSON.
pub fn sim_post(agent: &ureq::Agent, base: &str, path: &str, body: Value) -> Value {
    let resp = match agent.post(&format!("{base}{path}")).send_json(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    resp.into_json().unwrap()
}

/// Waits up to 15 s for `done`, failing the test with `what` otherwise.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (kind, key, state) of the discrepancies a reconciliation run reported, sorted.
pub fn reported(run: &Value) -> Vec<(String, String, String)> {
    let text = |d: &Value, field: &str| d[field].as_str().unwrap_or_default().to_string();
    let mut out: Vec<_> = run["reported"]
        .as_array()
        .unwrap_or_else(|| panic!("no reported list: {run}"))
        .iter()
        .map(|d| (text(d, "kind"), text(d, "key"), text(d, "state")))
        .collect();
    out.sort();
    out
}
