//! `GET /sim/wechat`: a small page where a person acts as the payer (pay, pay late, fail, keep waiting for the
//! password, settle a refund). It uses the same `/sim/wechat/…` JSON API the tests use.

use super::state::{Order, RefundStatus, TradeState};

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn button(label: &str, path: &str, body: &str) -> String {
    format!("<button data-path=\"{path}\" data-body=\"{}\">{label}</button>", escape(body))
}

pub(super) fn render<'a>(orders: impl Iterator<Item = &'a Order>) -> String {
    let mut orders: Vec<&Order> = orders.collect();
    orders.sort_by(|a, b| (b.created_at, &b.transaction_id).cmp(&(a.created_at, &a.transaction_id)));
    let mut rows = String::new();
    for o in orders.iter().take(200) {
        let key = serde_json::json!({"mch_id": o.mch_id, "out_trade_no": o.out_trade_no}).to_string();
        let late = serde_json::json!({"mch_id": o.mch_id, "out_trade_no": o.out_trade_no, "late": true}).to_string();
        let mut actions = String::new();
        match o.state {
            TradeState::NotPay | TradeState::UserPaying | TradeState::PayError => {
                actions.push_str(&button("Pay", "/sim/wechat/pay", &key));
                actions.push_str(&button("Fail", "/sim/wechat/fail", &key));
                actions.push_str(&button("Wait for password", "/sim/wechat/userpaying", &key));
            }
            TradeState::Closed | TradeState::Revoked => actions.push_str(&button("Pay late", "/sim/wechat/pay", &late)),
            TradeState::Success | TradeState::Refund => {}
        }
        for r in o.refunds.iter().filter(|r| r.status == RefundStatus::Processing) {
            for status in ["SUCCESS", "CLOSED", "ABNORMAL"] {
                let body = serde_json::json!({"mch_id": o.mch_id, "out_refund_no": r.out_refund_no, "status": status});
                let label = format!("Refund {} → {status}", r.out_refund_no);
                actions.push_str(&button(&escape(&label), "/sim/wechat/refunds/settle", &body.to_string()));
            }
        }
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
            escape(&o.mch_id),
            escape(&o.out_trade_no),
            escape(&o.trade_type),
            super::bills::yuan(o.total),
            o.state.as_str(),
            escape(&o.description),
        ));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>WeChat Pay simulator</title>\
         <style>body{{font-family:sans-serif}}td,th{{padding:4px 8px;border-bottom:1px solid #ddd}}</style></head>\
         <body><h1>WeChat Pay simulator</h1><p>Orders, newest first. Actions act as the payer.</p>\
         <table><tr><th>mch_id</th><th>out_trade_no</th><th>type</th><th>yuan</th><th>state</th><th>body</th>\
         <th></th></tr>{rows}</table><script>\
         document.querySelectorAll('button').forEach(b => b.onclick = async () => {{\
           const r = await fetch(b.dataset.path, {{method: 'POST', headers: {{'Content-Type': 'application/json'}},\
             body: b.dataset.body}});\
           if (!r.ok) alert(await r.text()); location.reload(); }});\
         </script></body></html>"
    )
}
