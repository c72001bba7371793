//! Payments through the WeChat simulator (scripts/bench, `SCENARIO=wechat`): each client runs, one after the
//! other, whole payments: `POST /v1/orders` → `POST /v1/orders/{id}/pay` (`wx_pub_qr`: paygate calls the
//! simulator's unifiedorder / native API) → the payer pays at the simulator (`POST /sim/wechat/pay`) → polls
//! `GET /v1/orders/{id}` until the simulator's signed notification has made the order paid.
//!
//! Prints three JSON lines: `wechat_<tag>_flow` (completed payments per second; p50/p99 of the whole payment),
//! `wechat_<tag>_pay_to_paid` (from the pay call to paid seen) and `wechat_<tag>_notify_to_paid` (from the
//! simulator's answer to the payer to paid seen: the notification's way through paygate, plus the poll).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a payment may take before the run fails (the notification did not arrive or was refused).
const PAID_WITHIN: Duration = Duration::from_secs(30);
/// Between reads of the order while waiting for the notification: short, so the poll adds little.
const POLL_EVERY: Duration = Duration::from_millis(2);

pub struct Target {
    pub base: String,
    pub key: String,
    pub app: String,
    pub sim: String,
    pub mch_id: String,
    /// Names the measures: `wechat_<tag>_…` (v2 or v3).
    pub tag: String,
}

/// Latencies (µs) of one payment: whole, pay → paid, notified → paid.
type Sample = (u64, u64, u64);

/// The transaction id the simulator gave the order behind `code_url`, which is what the payer's app scans: the
/// simulator numbers an order's prepay id `wx` + stamp (14) + n (16 digits) and its transaction id
/// `4200` + stamp + n (10 digits) (paygate-sim `wechat/state.rs`, `Books::create`). paygate does not show its
/// out_trade_no in `/v1`; the payer's answer is checked against the order id, so a change there fails loudly.
fn transaction_id(code_url: &str) -> String {
    let pr = code_url.split("pr=").nth(1).unwrap_or_else(|| panic!("code_url without pr=: {code_url}"));
    assert!(pr.len() == 30 && pr.bytes().all(|b| b.is_ascii_digit()), "unexpected prepay id in {code_url}");
    format!("4200{}{}", &pr[..14], &pr[20..])
}

fn call(req: ureq::Request, body: Option<&str>, what: &str) -> serde_json::Value {
    let resp = match body {
        Some(b) => req.set("content-type", "application/json").send_string(b),
        None => req.call(),
    };
    let text = match resp {
        Ok(r) => r.into_string(),
        Err(ureq::Error::Status(code, r)) => panic!("{what}: HTTP {code}: {}", r.into_string().unwrap_or_default()),
        Err(e) => panic!("{what}: {e}"),
    };
    let text = text.unwrap_or_else(|e| panic!("{what}: reading the answer: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

fn one_payment(t: &Target, agent: &ureq::Agent, run: &str, i: u64) -> Sample {
    let auth = format!("Bearer {}", t.key);
    let start = Instant::now();
    let body = format!(
        "{{\"app\":\"{}\",\"merchant_order_no\":\"x{run}{i}\",\"amount\":100,\"currency\":\"cny\",\
         \"subject\":\"bench\",\"body\":\"bench\",\"client_ip\":\"127.0.0.1\"}}",
        t.app
    );
    let order = call(agent.post(&format!("{}/v1/orders", t.base)).set("authorization", &auth), Some(&body), "create");
    let id = order["id"].as_str().unwrap_or_else(|| panic!("create: no id in {order}")).to_string();
    let pay_at = Instant::now();
    let url = format!("{}/v1/orders/{id}/pay", t.base);
    let paid = call(agent.post(&url).set("authorization", &auth), Some(r#"{"channel":"wx_pub_qr"}"#), "pay");
    let code_url = paid["charges"]["data"][0]["credential"]["wx_pub_qr"]
        .as_str()
        .unwrap_or_else(|| panic!("pay: no wx_pub_qr credential in {paid}"));
    let payer = serde_json::json!({"mch_id": t.mch_id, "transaction_id": transaction_id(code_url)}).to_string();
    let sim = call(agent.post(&format!("{}/sim/wechat/pay", t.sim)), Some(&payer), "sim pay");
    let no = sim["out_trade_no"].as_str().unwrap_or_default();
    assert!(no.starts_with(&id), "the simulator paid {no}, not order {id}'s charge: {sim}");
    let notified_at = Instant::now();
    let url = format!("{}/v1/orders/{id}", t.base);
    loop {
        let order = call(agent.get(&url).set("authorization", &auth), None, "retrieve");
        match order["status"].as_str() {
            Some("paid") => break,
            Some("created") => {}
            other => panic!("order {id} is {other:?} while waiting for the notification: {order}"),
        }
        assert!(notified_at.elapsed() < PAID_WITHIN, "order {id} not paid {PAID_WITHIN:?} after the payer paid");
        std::thread::sleep(POLL_EVERY);
    }
    let us = |t: Instant| t.elapsed().as_micros() as u64;
    (us(start), us(pay_at), us(notified_at))
}

/// `clients` threads paying for `seconds` (payments under way then finish); prints the three measures.
pub fn run(t: &Target, clients: usize, seconds: u64) {
    let run = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
    );
    let agents: Vec<ureq::Agent> = (0..clients).map(|_| super::agent()).collect();
    let (stop, counter, all) = (AtomicBool::new(false), AtomicU64::new(0), Mutex::new(Vec::new()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for agent in &agents {
            let (stop, counter, all, run) = (&stop, &counter, &all, &run);
            s.spawn(move || {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    mine.push(one_payment(t, agent, run, counter.fetch_add(1, Ordering::Relaxed)));
                }
                all.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed().as_secs_f64();
    let all: Vec<Sample> = all.into_inner().unwrap_or_else(|e| e.into_inner());
    let tag = &t.tag;
    super::report(&format!("wechat_{tag}_flow"), &mut all.iter().map(|s| s.0).collect::<Vec<_>>(), elapsed);
    super::report(&format!("wechat_{tag}_pay_to_paid"), &mut all.iter().map(|s| s.1).collect::<Vec<_>>(), elapsed);
    super::report(&format!("wechat_{tag}_notify_to_paid"), &mut all.iter().map(|s| s.2).collect::<Vec<_>>(), elapsed);
}
