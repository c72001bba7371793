//! Mutual TLS for WeChat Pay's `/secapi/` (issue 11): the simulator serves HTTPS under a test CA and, with
//! `client_ca`, wants a merchant API certificate on `/secapi/`. paygate trusts the test CA through the operator's
//! extra channel roots (`Policy::channel_ca_pem`, `--channel-ca-file`) and presents the account's
//! `client_certificate` + `client_key` on `/secapi/` only. Certificates are made here with the `openssl` tool.
//!
//! An account without a certificate calls without one: WeChat refuses with `return_code FAIL` (nothing done), which
//! is a clear channel error naming the missing certificate; the refund fails and its amount is refundable again. A
//! certificate WeChat rejects in the handshake is a TLS error, which is no answer: the refund stays pending (polled),
//! as when WeChat is unreachable — a TLS error never fails a refund.

mod support;

#[path = "wechat_world/mod.rs"]
mod wechat_world;

use paygate_sim::wechat::config::{SimConfig, TlsConfig};
use paygate_sim::wechat::WechatSim;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use support::{Backend, Keys, TestServer};
use wechat_world::{pems, V2_KEY};

both!(secapi_presents_the_client_certificate);

/// (CA, server cert + key for 127.0.0.1, client cert + key under the CA, client cert + key under another CA).
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
    rogue: (String, String),
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl tool runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn make_ca(dir: &Path, name: &str) {
    let (cert, key, subject) = (format!("{name}.pem"), format!("{name}-key.pem"), format!("/CN=paygate test {name}"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &subject,
            "-keyout",
            &key,
            "-out",
            &cert,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str) -> (String, String) {
    let (cert, key, csr, extfile) =
        (format!("{name}.pem"), format!("{name}-key.pem"), format!("{name}.csr"), format!("{name}.ext"));
    std::fs::write(dir.join(&extfile), ext).unwrap();
    let subject = format!("/CN=paygate test {name}");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &subject,
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            &cert,
        ],
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (read(&cert), read(&key))
}

fn pki(dir: &Path) -> Pki {
    make_ca(dir, "ca");
    make_ca(dir, "rogue-ca");
    let server = make_leaf(
        dir,
        "ca",
        "server",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1\n",
    );
    let client_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";
    let client = make_leaf(dir, "ca", "client", client_ext);
    let rogue = make_leaf(dir, "rogue-ca", "rogue", client_ext);
    Pki { ca: std::fs::read_to_string(dir.join("ca.pem")).unwrap(), server, client, rogue }
}

struct TlsWorld {
    s: TestServer,
    sim_base: String,
    agent: ureq::Agent,
}

impl TlsWorld {
    fn sim_call(&self, path: &str, body: Value) -> Value {
        support::channels::sim_post(&self.agent, &self.sim_base, path, body)
    }

    fn sim_refunds(&self, mch_id: &str, out_trade_no: &str) -> Value {
        let url = format!("{}/sim/wechat/orders?mch_id={mch_id}&out_trade_no={out_trade_no}", self.sim_base);
        self.agent.get(&url).call().unwrap().into_json::<Value>().unwrap()["refunds"].clone()
    }

    /// A v2 merchant at the simulator and in paygate for a new app; `identity`: the account's client certificate.
    fn merchant(&self, name: &str, mch_id: &str, identity: Option<&(String, String)>) -> Keys {
        let keys = self.s.create_app(name);
        let notify = format!("{}/notify/wechat/{}/test", self.s.base, keys.app);
        let merchant = json!({"mch_id": mch_id, "appid": "wx2421b1c4370ec43b", "api_key": V2_KEY,
            "refund_notify_url": notify});
        assert_eq!(self.sim_call("/sim/wechat/merchants", merchant)["mch_id"], mch_id);
        let mut account = json!({"mch_id": mch_id, "appid": "wx2421b1c4370ec43b", "api_base_url": self.sim_base,
            "api_version": "v2", "api_v2_key": V2_KEY});
        if let Some((cert, key)) = identity {
            account["client_certificate"] = json!(cert);
            account["client_key"] = json!(key);
        }
        let (status, got) = self.s.put(&keys.test, "/v1/channel_accounts/wechat", account);
        assert_eq!(status, 200, "{got}");
        keys
    }

    /// An order paid at the simulator over HTTPS (not /secapi/: no client certificate needed): (order id, trade no).
    fn paid_order(&self, keys: &Keys, mch_id: &str, no: &str) -> (String, String) {
        let order = self.s.create_order(keys, &keys.test, no, 1000, json!({}));
        let id = order["id"].as_str().unwrap().to_string();
        let (status, paid) = self.s.post(&keys.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
        assert_eq!(status, 200, "pay: {paid}");
        let ch = paid["charges"]["data"][0]["id"].as_str().unwrap().to_string();
        let scope = wechat_world::scope(keys);
        let trade_no = self.s.rt.block_on(self.s.app.store.charge(&scope, &ch)).unwrap().unwrap().channel_order_no;
        self.sim_call("/sim/wechat/pay", json!({"mch_id": mch_id, "out_trade_no": trade_no}));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while self.s.get(&keys.test, &format!("/v1/orders/{id}")).1["status"] != "paid" {
            assert!(std::time::Instant::now() < until, "timed out waiting for {no} to be paid");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        (id, trade_no)
    }

    fn refund(&self, keys: &Keys, order_id: &str, amount: i64) -> Value {
        let (status, r) =
            self.s.post(&keys.test, &format!("/v1/orders/{order_id}/order_refunds"), json!({"amount": amount}));
        assert_eq!(status, 200, "{r}");
        r["data"][0].clone()
    }
}

fn secapi_presents_the_client_certificate(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("paygate-wechat-tls-{}-{backend:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = pki(&dir);

    let s = TestServer::start_trusting(backend, &pki.ca);
    let tls = TlsConfig {
        cert_pem: pki.server.0.clone(),
        key_pem: pki.server.1.clone(),
        client_ca_pem: Some(pki.ca.clone()),
    };
    let config = SimConfig { platform_private_key_pem: pems().2.clone(), tls: Some(tls), ..SimConfig::default() };
    let sim = WechatSim::new(config).unwrap();
    let (addr, _task) = s.rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    support::channels::set_master_key(&s.app);
    let agent =
        ureq::AgentBuilder::new().tls_config(paygate_channels::net::tls_config(Some(&pki.ca), None).unwrap()).build();
    let w = TlsWorld { s, sim_base: format!("https://{addr}"), agent };
    w.sim_call("/sim/wechat/settings", json!({"notify_time_scale": 1000, "hold_refunds": true}));

    // With the account's client certificate: WeChat accepts the refund (pending until it settles).
    let with = w.merchant("wechat tls", "1900000301", Some(&pki.client));
    let (id, no) = w.paid_order(&with, "1900000301", "tls-1");
    let r = w.refund(&with, &id, 300);
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(w.sim_refunds("1900000301", &no)[0]["status"], "PROCESSING");

    // No certificate on the account: WeChat refuses (return_code FAIL), a clear channel error; still refundable.
    let without = w.merchant("wechat no cert", "1900000302", None);
    let (id, no) = w.paid_order(&without, "1900000302", "tls-2");
    let r = w.refund(&without, &id, 300);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["failure_code"], "channel_error", "{r}");
    let msg = r["failure_msg"].as_str().unwrap_or_default();
    assert!(msg.contains("mutual TLS") && msg.contains("client_certificate"), "{r}");
    assert_eq!(w.sim_refunds("1900000302", &no), json!([]));
    assert_eq!(w.s.get(&without.test, &format!("/v1/orders/{id}")).1["amount_refunded"], 0);

    // A certificate WeChat does not accept fails the handshake: no answer, so the refund is left pending.
    let rogue = w.merchant("wechat rogue cert", "1900000303", Some(&pki.rogue));
    let (id, no) = w.paid_order(&rogue, "1900000303", "tls-3");
    let r = w.refund(&rogue, &id, 300);
    assert_eq!(r["status"], "pending", "a TLS error must not fail the refund: {r}");
    assert_eq!(w.sim_refunds("1900000303", &no), json!([]));

    let _ = std::fs::remove_dir_all(&dir);
}
