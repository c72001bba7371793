//! A simulator on a free port with one merchant, a notify_url that accepts everything, and clients that sign
//! with paygate-channels' protocol code and verify every answer.
#![allow(dead_code)]

use paygate_channels::wechat::v2::{self, Fields, SignType};
use paygate_channels::wechat::v3::{self, Authorization, RequestParts, ResponseSignature, SigningKey, VerifyingKey};
use paygate_sim::http::{reply, serve, Outcome, Request};
use paygate_sim::wechat::config::{MerchantConfig, SimConfig};
use paygate_sim::wechat::WechatSim;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::Value;
use std::sync::mpsc;
use std::time::Duration;

pub const MCH: &str = "1900000109";
pub const APPID: &str = "wxd930ea5d5a258f4f";
pub const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
pub const V3KEY: &str = "0123456789abcdefghijklmnopqrstuv";
pub const SERIAL: &str = "MERCHANTSERIAL1";

pub struct Harness {
    _rt: tokio::runtime::Runtime,
    pub base: String,
    pub notify: String,
    pub received: mpsc::Receiver<Request>,
    pub merchant_key: SigningKey,
    pub platform: VerifyingKey,
    pub platform_id: String,
}

pub fn start() -> Harness {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let mut config = SimConfig::default();
    config.settings.notify_time_scale = 1000;
    config.merchants.push(MerchantConfig {
        mch_id: MCH.into(),
        appid: APPID.into(),
        api_key: KEY.into(),
        api_v3_key: V3KEY.into(),
        merchant_serial: SERIAL.into(),
        merchant_public_key_pem: public_pem,
        refund_notify_url: String::new(),
    });
    let sim = WechatSim::new(config).unwrap();
    let (addr, _) = rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    // The merchant's notify_url: records what arrives and answers as a merchant that accepted it.
    let (tx, received) = mpsc::channel();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let notify = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(serve(listener, None, move |req: Request| {
        let tx = tx.clone();
        async move {
            let v3 = req.path.starts_with("/v3");
            let _ = tx.send(req);
            Outcome::Reply(if v3 {
                reply(hyper::StatusCode::NO_CONTENT, "text/plain", "")
            } else {
                reply(hyper::StatusCode::OK, "text/xml", v2::SUCCESS_REPLY)
            })
        }
    }));
    Harness {
        base: format!("http://{addr}"),
        notify,
        received,
        merchant_key: SigningKey::from_pem(&private_pem).unwrap(),
        platform: VerifyingKey::from_pem(sim.public_key_pem()).unwrap(),
        platform_id: sim.public_key_id().to_string(),
        _rt: rt,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

impl Harness {
    /// A signed v2 request whose answer must be `return_code SUCCESS` and signed as the request was.
    pub fn v2(&self, path: &str, pairs: &[(&str, &str)], sign_type: SignType) -> Fields {
        let answer = self.v2_raw(path, pairs, sign_type);
        assert_eq!(answer.get("return_code"), Some("SUCCESS"), "{answer:?}");
        v2::verify_with(&answer, KEY, sign_type).expect("the answer is signed as the request was");
        answer
    }

    /// A signed v2 request; the answer as it came.
    pub fn v2_raw(&self, path: &str, pairs: &[(&str, &str)], sign_type: SignType) -> Fields {
        let mut fields: Fields = [("appid", APPID), ("mch_id", MCH)].into_iter().collect();
        fields.set("nonce_str", v2::nonce_str());
        if sign_type == SignType::HmacSha256 {
            fields.set("sign_type", "HMAC-SHA256");
        }
        for (k, v) in pairs {
            fields.set(*k, *v);
        }
        v2::sign_in_place(&mut fields, KEY).unwrap();
        let text = ureq::post(&format!("{}{path}", self.base)).send_string(&v2::render_xml(&fields)).unwrap();
        v2::parse_xml(&text.into_string().unwrap()).unwrap()
    }

    pub fn v3(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let parts = RequestParts { method, path_and_query: path, body: &text };
        let auth = Authorization::sign(&self.merchant_key, MCH, SERIAL, &parts, now(), &v3::random_token(32)).unwrap();
        let request = ureq::request(method, &format!("{}{path}", self.base))
            .set("Authorization", &auth.header_value())
            .set("Content-Type", "application/json");
        let response = match if text.is_empty() { request.call() } else { request.send_string(&text) } {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let status = response.status();
        let sig = ResponseSignature::from_headers(|name| response.header(name)).expect("signed answer");
        assert_eq!(sig.serial, self.platform_id);
        let answer = response.into_string().unwrap();
        sig.verify(&self.platform, &answer, now()).expect("the platform signature verifies");
        (status, if answer.is_empty() { Value::Null } else { serde_json::from_str(&answer).unwrap() })
    }

    pub fn sim(&self, path: &str, body: Value) -> Value {
        ureq::post(&format!("{}{path}", self.base)).send_json(body).unwrap().into_json().unwrap()
    }

    pub fn next(&self) -> Request {
        self.received.recv_timeout(Duration::from_secs(10)).expect("a notification")
    }
}
