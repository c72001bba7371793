//! The payment page's lower sections: the order's profit shares, each succeeded charge's settlement (fee,
//! subsidy, discounts), and the sandbox "pay" button on a pending test-mode charge, with its POST.

use super::html::{esc, url_value, when, yuan};
use super::pages::{mode_of, table};
use super::redirect;
use super::text::Text;
use crate::HttpResponse;
use paygate_core::console::{ConsoleCaller, Permission};
use paygate_core::Paygate;
use paygate_domain::ids::OrderId;
use paygate_domain::objects::OrderView;
use paygate_domain::pos::Settlement;
use paygate_domain::{ChargeStatus, Problem};
use std::fmt::Write as _;

/// Profit shares (as `GET /v1/orders/{id}/profit_sharings` lists them), settlements, and the sandbox buttons.
pub(super) async fn sections(
    app: &Paygate,
    t: &Text,
    who: &ConsoleCaller,
    view: &OrderView,
) -> Result<String, Problem> {
    let order_id = OrderId::parse(&view.order.id)?;
    let shares = app.shares_of_order(&who.caller, &order_id).await?;
    let mut body = format!("<h2>{}</h2>", esc(t.pd_shares));
    let heads = [t.pd_share, t.pd_kind, t.amount, t.pd_returned, t.status, t.pd_receivers, t.created];
    let rows = shares.iter().map(|s| {
        let mut receivers = String::new();
        for r in &s.receivers {
            let _ = write!(receivers, "{} {} {}<br>", esc(&r.kind), esc(&r.account), yuan(r.amount.fen()));
        }
        [
            esc(&s.id),
            esc(s.kind.as_str()),
            yuan(s.amount.fen()),
            yuan(s.amount_returned.fen()),
            esc(s.status.as_str()),
            receivers,
            when(s.created),
        ]
    });
    table(&mut body, &heads, rows);
    let _ = write!(body, "<h2>{}</h2>", esc(t.pd_settlement));
    let heads = [
        t.charge,
        t.pd_origin,
        t.pd_discounts,
        t.pd_user_pay,
        t.pd_fee_base,
        t.pd_rate,
        t.pd_channel_fee,
        t.pd_subsidy,
        t.pd_received,
    ];
    let settled = view.charges.iter().filter(|c| c.status == ChargeStatus::Succeeded).filter_map(|c| {
        // A settlement this build cannot read (none stored, an older shape) is left out rather than guessed.
        let s = Settlement::from_json(c.settlement.as_ref()?)?;
        Some([
            esc(&c.id),
            yuan(s.origin.fen()),
            discounts(&s),
            yuan(s.user_pay.fen()),
            yuan(s.fee_base.fen()),
            rate(s.rate.bp()),
            yuan(s.channel.fee.fen()),
            yuan(s.channel.real_subsidy.fen()),
            yuan(s.channel.received.fen()),
        ])
    });
    table(&mut body, &heads, settled);
    let pending_test = view.charges.iter().filter(|c| !c.mode.is_live() && c.status == ChargeStatus::Pending);
    if who.may(Permission::SandboxPay) {
        let mode = mode_of(who);
        for c in pending_test {
            let _ = write!(
                body,
                "<form class=\"filters\" method=\"post\" \
                 action=\"/console/{mode}/payments/{order}/charges/{charge}/pay\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button>{label} {shown}</button></form>",
                order = url_value(&view.order.id),
                charge = url_value(&c.id),
                csrf = esc(&who.csrf_token),
                label = esc(t.pd_sandbox_pay),
                shown = esc(&c.id),
            );
        }
    }
    Ok(body)
}

/// The discounts' total and, when any, their parts and descriptions.
fn discounts(s: &Settlement) -> String {
    let d = &s.discounts;
    let mut out = yuan(d.total().fen());
    for (name, fen) in [("kd", d.kd.fen()), ("m", d.m.fen()), ("y", d.y.fen()), ("p", d.p.fen())] {
        if fen != 0 {
            let _ = write!(out, "<br>{name} {}", yuan(fen));
        }
    }
    for desc in [&d.kd_desc, &d.mch_desc] {
        if !desc.is_empty() {
            let _ = write!(out, "<br>{}", esc(desc));
        }
    }
    out
}

/// Basis points as a percentage: 60 → "0.60%".
fn rate(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02}%", abs / 100, abs % 100)
}

/// `POST /console/{mode}/payments/{id}/charges/{charge}/pay`: completes the charge at the sandbox, back to the
/// payment (the CSRF check ran at the edge).
pub(super) async fn sandbox_pay(
    app: &Paygate,
    who: &ConsoleCaller,
    id: &str,
    charge_id: &str,
) -> Result<HttpResponse, Problem> {
    let order_id = OrderId::parse(id)?;
    app.console_sandbox_pay(who, &order_id, charge_id).await?;
    let mode = mode_of(who);
    Ok(redirect(&format!("/console/{mode}/payments/{}?paid=1", url_value(&order_id))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_read_as_percentages() {
        assert_eq!(super::rate(60), "0.60%");
        assert_eq!(super::rate(1234), "12.34%");
        assert_eq!(super::rate(0), "0.00%");
    }
}
