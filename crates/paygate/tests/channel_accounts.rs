//! Channel accounts (issue 11 item 1, issue 12 item 1): set, show, list and remove a merchant's
//! WeChat Pay / Alipay credentials through `/v1` and the CLI; secrets sealed with AES-256-GCM
//! under the operator's master key, never answered, never logged, never in the database in
//! clear; scoped by app and mode; rotation by rekey; a tampered row fails clearly.

mod support;

use base64::Engine;
use paygate_core::secret_box::MasterKeys;
use paygate_domain::accounts::{ChannelAccount, Provider};
use paygate_domain::{Mode, Scope};
use paygate_store::{ExposeSecret, StoredAccount};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use support::{Backend, TestServer};

both!(
    set_get_list_delete_scoped_and_never_in_clear,
    bad_input_is_refused_naming_the_field,
    rekey_rotates_and_a_tampered_row_fails_clearly,
    logs_never_show_a_secret,
    cli_sets_and_shows_without_secrets,
    writes_are_conditional_and_concurrent_updates_both_land,
);

const V3_KEY: &str = "v3KeyV3KeyV3KeyV3KeyV3KeyV3Key12";
const V2_KEY: &str = "V2keyV2keyV2keyV2keyV2keyV2key32";
/// Structurally a certificate (a DER SEQUENCE): the checks read the PEM, not X.509.
const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----";

fn master(id: &str, byte: u8) -> String {
    format!("{id}:{}", base64::engine::general_purpose::STANDARD.encode([byte; 32]))
}

fn keys(text: &str) -> MasterKeys {
    MasterKeys::parse(text).unwrap()
}

/// An RSA key pair (PKCS#8 private PEM, SPKI public PEM), made once per test binary.
fn rsa_pems() -> &'static (String, String) {
    static PEMS: OnceLock<(String, String)> = OnceLock::new();
    PEMS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let mut rng = rand_core_rng();
        let private = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let public = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        (private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(), public)
    })
}

fn rand_core_rng() -> impl rsa::rand_core::CryptoRngCore {
    rsa::rand_core::OsRng
}

fn wechat_body() -> Value {
    json!({
        "mch_id": "1900000109", "appid": "wxd678efh567hg6787", "api_version": "v3",
        "api_v2_key": V2_KEY, "api_v3_key": V3_KEY, "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A72",
        "merchant_private_key": rsa_pems().0, "platform_certificate": CERT,
        "api_base_url": "http://127.0.0.1:9/sim",
    })
}

/// The private key's base64 body: what would show if the PEM leaked anywhere.
fn key_marker() -> String {
    rsa_pems().0.lines().nth(1).unwrap().to_string()
}

fn secrets() -> Vec<String> {
    vec![V3_KEY.to_string(), V2_KEY.to_string(), key_marker()]
}

/// The stored rows' config text and ciphertext, read straight from the database.
fn raw_rows(s: &TestServer) -> Vec<(String, String, Vec<u8>)> {
    let sql = "SELECT app_id, config, secret_ciphertext FROM channel_accounts ORDER BY app_id";
    match s.database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
            rows.map(Result::unwrap).collect()
        }
        None => s.rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&s.database_url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let rows = client.query(sql, &[]).await.unwrap();
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
        }),
    }
}

/// Every byte of the database (SQLite: the file and its WAL), to search for plaintext.
fn database_bytes(s: &TestServer) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(path) = s.database_url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal"] {
            bytes.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn wechat_of(s: &TestServer, app: &str, mode: Mode) -> Result<Arc<ChannelAccount>, paygate_domain::Problem> {
    let scope = Scope { app_id: app.to_string(), mode };
    s.rt.block_on(s.app.channel_account(&scope, Provider::Wechat))
}

fn set_get_list_delete_scoped_and_never_in_clear(backend: Backend) {
    let s = TestServer::start(backend);
    s.app.set_master_keys(keys(&master("k1", 1)));
    let (a, b) = (s.create_app("shop a"), s.create_app("shop b"));
    let (status, _, text) = s.raw("PUT", &a.test, "/v1/channel_accounts/wechat", Some(wechat_body().to_string()), &[]);
    assert_eq!(status, 200, "{text}");
    for secret in secrets() {
        assert!(!text.contains(&secret), "a secret is never answered: {text}");
    }
    let shown: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["object"], "channel_account");
    assert_eq!((shown["provider"].as_str(), shown["livemode"].as_bool()), (Some("wechat"), Some(false)));
    assert_eq!(shown["mch_id_last4"], "0109");
    assert_eq!((shown["has_api_v3_key"].as_bool(), shown["has_client_key"].as_bool()), (Some(true), Some(false)));
    assert_eq!(shown["api_base_url"], "http://127.0.0.1:9/sim");
    assert!(shown.get("mch_id").is_none() && shown.get("api_v3_key").is_none(), "{shown}");

    let (status, got) = s.get(&a.test, "/v1/channel_accounts/wechat");
    assert_eq!((status, &got), (200, &shown));
    let (_, list) = s.get(&a.test, "/v1/channel_accounts");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // A partial update keeps the secrets it does not name.
    let (status, updated) = s.put(&a.test, "/v1/channel_accounts/wechat", json!({"sub_mch_id": "1900000110"}));
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["sub_mch_id_last4"].as_str(), updated["has_api_v3_key"].as_bool()), (Some("0110"), Some(true)));
    let ChannelAccount::Wechat(account) = &*wechat_of(&s, &a.app, Mode::Test).unwrap() else { panic!("wechat") };
    assert_eq!(account.api_v3_key.as_ref().unwrap().expose_secret(), V3_KEY);
    assert_eq!(account.sub_mch_id.as_deref(), Some("1900000110"));

    // Another app, or the same app's live key, sees nothing.
    for (key, what) in [(&b.test, "app b"), (&a.live, "live key")] {
        let (status, body) = s.get(key, "/v1/channel_accounts/wechat");
        assert_eq!(status, 404, "{what}: {body}");
        let (_, list) = s.get(key, "/v1/channel_accounts");
        assert_eq!(list["data"], json!([]), "{what}");
        let (status, _) = s.call("DELETE", key, "/v1/channel_accounts/wechat", None, &[]);
        assert_eq!(status, 404, "{what}");
    }
    assert!(wechat_of(&s, &a.app, Mode::Live).is_err());

    // The database holds no secret in clear: not in the row, not anywhere in the file.
    let rows = raw_rows(&s);
    assert_eq!(rows.len(), 1);
    let (app, config, ciphertext) = &rows[0];
    assert_eq!(app, &a.app);
    assert!(config.contains("1900000109"), "public fields are stored as they are: {config}");
    let bytes = database_bytes(&s);
    for secret in secrets() {
        assert!(!config.contains(&secret) && !contains(ciphertext, &secret), "secret in the row");
        assert!(!contains(&bytes, &secret), "secret in the database file");
    }

    // An Alipay account beside it (PKCS#8 private key, public-key mode).
    let alipay = json!({"app_id": "2021000000000001", "app_private_key": rsa_pems().0,
        "alipay_public_key": rsa_pems().1, "seller_id": "2088000000000001"});
    let (status, body) = s.put(&a.test, "/v1/channel_accounts/alipay", alipay);
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["has_app_private_key"].as_bool(), body["gateway_url"].is_null()), (Some(true), true));
    let (_, list) = s.get(&a.test, "/v1/channel_accounts");
    let providers: Vec<&str> =
        list["data"].as_array().unwrap().iter().map(|v| v["provider"].as_str().unwrap()).collect();
    assert_eq!(providers, ["alipay", "wechat"]);

    let (status, deleted) = s.call("DELETE", &a.test, "/v1/channel_accounts/wechat", None, &[]);
    assert_eq!((status, deleted["deleted"].as_bool()), (200, Some(true)));
    assert_eq!(s.get(&a.test, "/v1/channel_accounts/wechat").0, 404);
    assert_eq!(s.call("DELETE", &a.test, "/v1/channel_accounts/wechat", None, &[]).0, 404);
    let err = wechat_of(&s, &a.app, Mode::Test).unwrap_err();
    assert_eq!(err.code, "channel_account_missing", "removal is seen at once on this node");
}

fn bad_input_is_refused_naming_the_field(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    // No master key: nothing is stored (never in clear), reads still work.
    let (status, body) = s.put(&k.test, "/v1/channel_accounts/wechat", wechat_body());
    assert_eq!((status, body["error"]["code"].as_str()), (402, Some("master_key_missing")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("PAYGATE_MASTER_KEYS"));
    assert_eq!(s.get(&k.test, "/v1/channel_accounts/wechat").0, 404);
    assert!(raw_rows(&s).is_empty());

    s.app.set_master_keys(keys(&master("k1", 1)));
    let with = |field: &str, value: Value| {
        let mut body = wechat_body();
        body[field] = value;
        body
    };
    let cases = [
        ("wechat", with("api_v3_key", json!("short")), "api_v3_key"),
        ("wechat", with("api_v2_key", json!("x".repeat(31))), "api_v2_key"),
        (
            "wechat",
            with("merchant_private_key", json!("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----")),
            "merchant_private_key",
        ),
        (
            "wechat",
            with("merchant_private_key", json!(CERT.replace("CERTIFICATE", "PRIVATE KEY"))),
            "merchant_private_key",
        ),
        ("wechat", with("platform_certificate", json!("hello")), "platform_certificate"),
        ("wechat", with("api_version", json!("v4")), "api_version"),
        ("wechat", with("api_base_url", json!("ftp://x")), "api_base_url"),
        ("wechat", with("mch_id", json!(1900000109)), "mch_id"),
        ("wechat", with("mch_id", Value::Null), "mch_id"),
        ("wechat", with("seller_id", json!("2088")), "seller_id"),
        ("wechat", with("client_key", json!(rsa_pems().0)), "client_certificate"),
        ("paypal", wechat_body(), "provider"),
        (
            "alipay",
            json!({"app_id": "2021", "seller_id": "2088", "app_private_key": rsa_pems().0}),
            "alipay_public_key",
        ),
    ];
    for (provider, body, field) in cases {
        let (status, _, text) =
            s.raw("PUT", &k.test, &format!("/v1/channel_accounts/{provider}"), Some(body.to_string()), &[]);
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((status, answer["error"]["param"].as_str()), (400, Some(field)), "{field}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        for secret in secrets() {
            assert!(!text.contains(&secret), "an error never repeats a secret: {text}");
        }
    }
    assert_eq!(s.get(&k.test, "/v1/channel_accounts/paypal").1["error"]["param"], "provider");
    assert!(raw_rows(&s).is_empty(), "nothing invalid was stored");
}

fn rekey_rotates_and_a_tampered_row_fails_clearly(backend: Backend) {
    let s = TestServer::start(backend);
    s.app.set_master_keys(keys(&master("k1", 1)));
    let (a, b) = (s.create_app("a"), s.create_app("b"));
    for k in [&a, &b] {
        assert_eq!(s.put(&k.test, "/v1/channel_accounts/wechat", wechat_body()).0, 200);
    }
    assert_eq!(s.put(&a.live, "/v1/channel_accounts/wechat", wechat_body()).0, 200);

    // Rotation: the new key first, the old one still opening; rekey; then the old one removed.
    s.app.set_master_keys(keys(&format!("{},{}", master("k2", 2), master("k1", 1))));
    let pass = s.rt.block_on(s.app.rekey_channel_accounts()).unwrap();
    assert_eq!((pass.done, pass.failed.len()), (3, 0));
    let again = s.rt.block_on(s.app.rekey_channel_accounts()).unwrap();
    assert_eq!(again.done, 0, "nothing left under the old key");
    s.app.set_master_keys(keys(&master("k2", 2)));
    for (app, mode) in [(&a.app, Mode::Test), (&b.app, Mode::Test), (&a.app, Mode::Live)] {
        let ChannelAccount::Wechat(w) = &*wechat_of(&s, app, mode).unwrap() else { panic!("wechat") };
        assert_eq!(w.api_v3_key.as_ref().unwrap().expose_secret(), V3_KEY);
    }

    // A missing key is a clear error, never a panic; setting needs the secrets open too.
    s.app.set_master_keys(keys(&master("k3", 3)));
    let err = wechat_of(&s, &a.app, Mode::Test).unwrap_err();
    assert_eq!(err.code, "channel_account_undecryptable");
    assert!(err.message.contains("'k2'"), "{}", err.message);
    let (status, body) = s.put(&a.test, "/v1/channel_accounts/wechat", json!({"sub_mch_id": "1"}));
    assert_eq!((status, body["error"]["code"].as_str()), (402, Some("channel_account_undecryptable")));
    assert_eq!(s.get(&a.test, "/v1/channel_accounts/wechat").0, 200, "the public view needs no key");

    // A ciphertext copied from app a's row to app b's does not open (AAD binds the row).
    s.app.set_master_keys(keys(&master("k2", 2)));
    s.sql(&format!(
        "UPDATE channel_accounts SET (secret_ciphertext, secret_nonce) = \
         (SELECT secret_ciphertext, secret_nonce FROM channel_accounts WHERE app_id = '{}' AND livemode = FALSE) \
         WHERE app_id = '{}'",
        a.app, b.app
    ));
    s.clock.advance(paygate_core::accounts::ACCOUNT_CACHE_SECONDS + 1);
    let err = wechat_of(&s, &b.app, Mode::Test).unwrap_err();
    assert_eq!(err.code, "channel_account_undecryptable");
    assert!(err.message.contains("altered or copied"), "{}", err.message);
    assert!(wechat_of(&s, &a.app, Mode::Test).is_ok());
    // A rekey reports the bad row and goes on.
    s.app.set_master_keys(keys(&format!("{},{}", master("k4", 4), master("k2", 2))));
    let pass = s.rt.block_on(s.app.rekey_channel_accounts()).unwrap();
    assert_eq!(pass.done, 2);
    assert_eq!(pass.failed.len(), 1);
    assert!(pass.failed[0].0.starts_with(&b.app), "{:?}", pass.failed);
}

fn database_for(backend: Backend) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = support::fresh_database(&rt, backend);
    (rt, url)
}

fn paygate(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paygate"));
    cmd.args(args).env_remove("PAYGATE_MASTER_KEYS").env_remove("PAYGATE_MASTER_KEY_FILE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn create_app(url: &str) -> Value {
    let out = paygate(&["app", "create", "--name", "cli", "--json", "--database", url], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn logs_never_show_a_secret(backend: Backend) {
    let (_rt, url) = database_for(backend);
    let app = create_app(&url);
    let key = app["test_secret_key"].as_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["serve", "--no-worker", "--listen", "127.0.0.1:0", "--database", &url, "--log", "debug"])
        .env("PAYGATE_MASTER_KEYS", master("k1", 1))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    let base = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        log.lock().unwrap().push(line.clone());
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split(' ').next().unwrap().to_string();
        }
    };
    let sink = log.clone();
    let reader = std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l)));
    let put = |body: Value| {
        let req =
            ureq::put(&format!("{base}/v1/channel_accounts/wechat")).set("authorization", &format!("Bearer {key}"));
        match req.send_string(&body.to_string()) {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(put(wechat_body()), 200);
    let mut bad = wechat_body();
    bad["api_v2_key"] = json!(format!("{V2_KEY}!"));
    assert_eq!(put(bad), 400);
    let resp = ureq::get(&format!("{base}/v1/channel_accounts/wechat")).set("authorization", &format!("Bearer {key}"));
    assert_eq!(resp.call().unwrap().status(), 200);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("/v1/channel_accounts/*"), "requests are logged: {log}");
    assert!(log.contains("channel account set"), "{log}");
    for secret in secrets() {
        assert!(!log.contains(&secret), "a secret reached the log: {log}");
    }
    assert!(!log.contains(&master("k1", 1)[3..]), "the master key reached the log");
}

fn cli_sets_and_shows_without_secrets(backend: Backend) {
    let (_rt, url) = database_for(backend);
    let app = create_app(&url);
    let app_id = app["id"].as_str().unwrap();
    let dir = std::env::temp_dir().join(format!("paygate-accounts-{}-{app_id}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{text}\n")).unwrap();
        path.display().to_string()
    };
    let (v3, pem, cert) = (file("v3.key", V3_KEY), file("merchant.pem", &rsa_pems().0), file("platform.pem", CERT));
    let target = ["--app", app_id, "--mode", "test", "--provider", "wechat"];
    let mut set: Vec<&str> = vec!["channel-account", "set"];
    set.extend(target);
    set.extend(["--mch-id", "1900000109", "--appid", "wxd678efh567hg6787", "--merchant-serial-no", "5157F0"]);
    set.extend(["--api-v3-key-file", &v3, "--merchant-private-key-file", &pem, "--platform-certificate-file", &cert]);
    set.extend(["--json", "--database", &url]);

    let out = paygate(&set, &[]);
    assert_eq!(out.status.code(), Some(1), "refused without a master key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PAYGATE_MASTER_KEYS"));

    let k1 = master("k1", 1);
    let out = paygate(&set, &[("PAYGATE_MASTER_KEYS", &k1)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!((shown["mch_id_last4"].as_str(), shown["has_api_v3_key"].as_bool()), (Some("0109"), Some(true)));

    let mut show: Vec<&str> = vec!["channel-account", "show"];
    show.extend(target);
    show.extend(["--json", "--database", &url]);
    let out = paygate(&show, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), shown);
    let out = paygate(&["channel-account", "list", "--app", app_id, "--json", "--database", &url], &[]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let everything = [&out.stdout[..], &out.stderr[..]].concat();
    for secret in secrets() {
        assert!(!contains(&everything, &secret));
    }

    // Rotation through the CLI, with the keys in a file.
    let keys_file = file("master.keys", &format!("{}\n{k1}", master("k2", 2)));
    let out =
        paygate(&["channel-account", "rekey", "--json", "--database", &url, "--master-key-file", &keys_file], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rekeyed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((rekeyed["key_id"].as_str(), rekeyed["rekeyed"].as_i64()), (Some("k2"), Some(1)));
    // A partial update under the new key alone keeps the secrets.
    let mut update: Vec<&str> = vec!["channel-account", "set"];
    update.extend(target);
    update.extend(["--sub-mch-id", "1900000110", "--json", "--database", &url]);
    let out = paygate(&update, &[("PAYGATE_MASTER_KEYS", &master("k2", 2))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((shown["sub_mch_id_last4"].as_str(), shown["has_api_v3_key"].as_bool()), (Some("0110"), Some(true)));
    // A secret on the command line is not an option at all.
    let out =
        paygate(&["channel-account", "set", "--app", app_id, "--provider", "wechat", "--api-v3-key", V3_KEY], &[]);
    assert_eq!(out.status.code(), Some(2));
    let mut remove: Vec<&str> = vec!["channel-account", "remove"];
    remove.extend(target);
    remove.extend(["--database", &url]);
    assert!(paygate(&remove, &[]).status.success());
    assert_eq!(paygate(&show, &[]).status.code(), Some(1));
    std::fs::remove_dir_all(dir).unwrap();
}

fn writes_are_conditional_and_concurrent_updates_both_land(backend: Backend) {
    let s = TestServer::start(backend);
    s.app.set_master_keys(keys(&master("k1", 1)));
    let k = s.create_app("shop");
    let store = s.app.store.clone();
    let row = StoredAccount {
        scope: Scope { app_id: k.app.clone(), mode: Mode::Test },
        provider: Provider::Alipay,
        config: json!({"public": {}, "secrets": []}),
        ciphertext: vec![7; 16],
        nonce: vec![1; 12],
        key_id: "k0".into(),
        created: 1,
        updated: 1,
    };
    s.rt.block_on(async {
        assert!(store.put_channel_account(&row, None).await.unwrap());
        assert!(!store.put_channel_account(&row, None).await.unwrap(), "an insert never overwrites");
        let next = StoredAccount { nonce: vec![2; 12], updated: 2, ..row.clone() };
        assert!(!store.put_channel_account(&next, Some(&[9; 12])).await.unwrap(), "stale read");
        assert!(store.put_channel_account(&next, Some(&[1; 12])).await.unwrap());
        let resealed = StoredAccount { nonce: vec![3; 12], key_id: "k1".into(), ..next.clone() };
        assert!(!store.reseal_channel_account(&resealed, "kX", &[2; 12]).await.unwrap(), "other key id");
        assert!(!store.reseal_channel_account(&resealed, "k0", &[1; 12]).await.unwrap(), "other nonce");
        assert!(store.reseal_channel_account(&resealed, "k0", &[2; 12]).await.unwrap());
        let stored = store.channel_account(&row.scope, Provider::Alipay).await.unwrap().unwrap();
        assert_eq!((stored.key_id.as_str(), stored.created, stored.updated), ("k1", 1, 2));
        let after = (String::new(), false, String::new());
        assert!(store.channel_accounts_not_under("k1", &after, 10).await.unwrap().is_empty());
        assert_eq!(store.channel_accounts_not_under("k9", &after, 10).await.unwrap().len(), 1);
    });

    // Two partial updates at once: each re-reads and re-applies, so neither is lost.
    assert_eq!(s.put(&k.test, "/v1/channel_accounts/wechat", wechat_body()).0, 200);
    let s = Arc::new(s);
    let threads: Vec<_> = [json!({"sub_mch_id": "1900000110"}), json!({"api_base_url": "http://127.0.0.1:8/b"})]
        .into_iter()
        .map(|body| {
            let (s, key) = (s.clone(), k.test.clone());
            std::thread::spawn(move || s.put(&key, "/v1/channel_accounts/wechat", body).0)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    let (_, shown) = s.get(&k.test, "/v1/channel_accounts/wechat");
    assert_eq!(
        (shown["sub_mch_id_last4"].as_str(), shown["api_base_url"].as_str()),
        (Some("0110"), Some("http://127.0.0.1:8/b"))
    );
}
