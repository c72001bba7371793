//! `GET /console/{mode}`: the overview — today, 7 days, 30 days of settled money (volume, count, success rate,
//! refunds), by channel family and by face, as server-rendered SVG bar charts (no script; the CSP allows none).

use super::html::{esc, yuan};
use super::text::Text;
use super::{nav_of, other_mode, respond};
use crate::HttpResponse;
use hyper::StatusCode;
use paygate_core::console::overview::{Period, Totals};
use paygate_core::console::ConsoleCaller;
use paygate_core::Paygate;
use paygate_domain::Problem;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const BAR_HEIGHT: i64 = 22;
const LABEL_WIDTH: i64 = 90;
const BAR_WIDTH: i64 = 220;
const CHART_WIDTH: i64 = LABEL_WIDTH + BAR_WIDTH + 110;

pub(super) async fn overview(app: &Paygate, t: &Text, who: &ConsoleCaller) -> Result<HttpResponse, Problem> {
    let periods = app.console_overview(who).await?;
    let mut body = format!("<h1>{}</h1>", esc(t.ov_title));
    body.push_str("<div class=\"cards\">");
    for period in &periods {
        card(&mut body, t, period);
    }
    body.push_str("</div>");
    let other = other_mode(who, "");
    let nav = nav_of(who, other.trim_end_matches('/'));
    Ok(respond(StatusCode::OK, "text/html; charset=utf-8", super::html::page(t, t.ov_title, Some(&nav), &body)))
}

fn period_name(t: &Text, days: i64) -> &'static str {
    match days {
        1 => t.ov_today,
        7 => t.ov_7_days,
        _ => t.ov_30_days,
    }
}

fn card(body: &mut String, t: &Text, p: &Period) {
    let rate = match p.success_permille() {
        Some(permille) => format!("{}.{}%", permille / 10, permille % 10),
        None => t.none.to_string(),
    };
    let _ = write!(
        body,
        "<section class=\"card\" data-days=\"{days}\"><h2>{name}</h2><dl>\
         <dt>{volume_l}</dt><dd data-k=\"volume\">{volume}</dd><dt>{count_l}</dt><dd data-k=\"count\">{count}</dd>\
         <dt>{rate_l}</dt><dd data-k=\"rate\">{rate}</dd>\
         <dt>{refunds_l}</dt><dd data-k=\"refunds\">{refunds} ({refund_count})</dd></dl>",
        days = p.days,
        name = esc(period_name(t, p.days)),
        volume_l = esc(t.ov_volume),
        volume = yuan(p.total.paid_amount),
        count_l = esc(t.ov_count),
        count = p.total.paid_count,
        rate_l = esc(t.ov_success_rate),
        refunds_l = esc(t.ov_refunds),
        refunds = yuan(p.total.refund_amount),
        refund_count = p.total.refund_count,
    );
    let _ = write!(body, "<h3>{}</h3>", esc(t.ov_by_channel));
    chart(body, t, "channel", &p.by_channel, |name| name.to_string());
    let _ = write!(body, "<h3>{}</h3>", esc(t.ov_by_face));
    chart(body, t, "face", &p.by_face, |name| face_name(t, name).to_string());
    body.push_str("</section>");
}

fn face_name<'a>(t: &'a Text, face: &'a str) -> &'a str {
    match face {
        "v1" => t.ov_face_api,
        "hserve" => t.ov_face_hserve,
        "cashier" => t.ov_face_cashier,
        other => other,
    }
}

/// Horizontal bars of paid amounts, the longest the largest group; each bar's label and amount as SVG text.
fn chart(body: &mut String, t: &Text, kind: &str, groups: &BTreeMap<String, Totals>, label: impl Fn(&str) -> String) {
    if groups.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t.ov_nothing));
        return;
    }
    let max = groups.values().map(|g| g.paid_amount).max().unwrap_or(0).max(1);
    let rows = i64::try_from(groups.len()).unwrap_or(i64::MAX / BAR_HEIGHT);
    let height = rows.saturating_mul(BAR_HEIGHT);
    let _ = write!(
        body,
        "<svg class=\"chart\" role=\"img\" aria-label=\"{kind}\" viewBox=\"0 0 {CHART_WIDTH} {height}\" \
         width=\"100%\" preserveAspectRatio=\"xMinYMin meet\">"
    );
    for (i, (name, g)) in groups.iter().enumerate() {
        let y = i64::try_from(i).unwrap_or(0).saturating_mul(BAR_HEIGHT);
        // i128: an amount times the bar width cannot overflow; the result is at most BAR_WIDTH.
        let width = (i128::from(g.paid_amount.max(0)) * i128::from(BAR_WIDTH) / i128::from(max)) as i64;
        let _ = write!(
            body,
            "<g data-{kind}=\"{key}\" data-paid=\"{paid}\"><text x=\"0\" y=\"{ty}\" font-size=\"12\">{label}</text>\
             <rect x=\"{LABEL_WIDTH}\" y=\"{ry}\" width=\"{width}\" height=\"{bh}\" fill=\"#2f6fde\"></rect>\
             <text x=\"{ax}\" y=\"{ty}\" font-size=\"12\">{amount} ({count})</text></g>",
            key = esc(name),
            paid = g.paid_amount,
            ty = y + 15,
            label = esc(&label(name)),
            ry = y + 3,
            bh = BAR_HEIGHT - 6,
            ax = LABEL_WIDTH + width + 6,
            amount = yuan(g.paid_amount),
            count = g.paid_count,
        );
    }
    body.push_str("</svg>");
}
