//! The console's HTML by hand. Every value that did not come from this crate's own literals goes through
//! [`esc`] — the one escaping function, for text and for double-quoted attribute values alike — so a merchant's
//! subject, a payer's uid or a reason typed into a form can never become markup. No template crate: the pages
//! are few and small, and this keeps the 2-core build free of a proc-macro dependency.

use super::text::Text;
use paygate_domain::BeijingTime;
use std::fmt::Write as _;

/// Escapes text for an element body or a double-quoted attribute.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value (for links that carry filters).
pub(crate) fn url_value(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Fen as yuan: `12.34`, integers only.
/// A query value, trimmed; empty is absent.
pub(crate) fn param<'a>(q: &'a crate::request::Query, name: &str) -> Option<&'a str> {
    q.get(name).map(str::trim).filter(|v| !v.is_empty())
}

/// The "next page" link of a list: `link` (the cursor already in it) plus the filters of `q` named in `keep`.
pub(crate) fn next_page(t: &super::text::Text, mut link: String, q: &crate::request::Query, keep: &[&str]) -> String {
    for name in keep {
        if let Some(v) = param(q, name) {
            link.push_str(&format!("&{name}={}", url_value(v)));
        }
    }
    format!("<p><a href=\"{}\">{}</a></p>", esc(&link), esc(t.next_page))
}

/// A form of one button that POSTs to `action` with the session's CSRF token (`csrf_input`: its hidden input).
pub(crate) fn post_button(action: &str, csrf_input: &str, label: &str) -> String {
    format!("<form method=\"post\" action=\"{}\">{csrf_input}<button>{}</button></form>", esc(action), esc(label))
}

pub(crate) fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A unix time in Beijing time (the seed platforms' clock): `2026-11-30 08:00:00`.
pub(crate) fn when(unix: i64) -> String {
    let t = BeijingTime::of(unix);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// The navigation of a signed-in page.
pub(crate) struct Nav<'a> {
    pub email: &'a str,
    pub role: &'a str,
    pub live: bool,
    pub admin: bool,
    pub csrf: &'a str,
    /// The same page in the other mode.
    pub other_mode_path: &'a str,
}

/// A whole page: `body` is already HTML (built from literals and [`esc`]aped values).
pub(crate) fn page(t: &Text, title: &str, nav: Option<&Nav<'_>>, body: &str) -> String {
    let mut html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {product}</title><link rel=\"stylesheet\" href=\"/console/style.css\"></head><body>",
        lang = t.lang,
        title = esc(title),
        product = esc(t.product),
    );
    html.push_str("<header><strong>paygate</strong>");
    if let Some(nav) = nav {
        let mode = if nav.live { "live" } else { "test" };
        let _ = write!(html, "<nav><a href=\"/console/{mode}\">{}</a>", esc(t.ov_title));
        let _ = write!(html, "<a href=\"/console/{mode}/payments\">{payments}</a>", payments = esc(t.payments));
        let _ = write!(html, "<a href=\"/console/{mode}/members\">{}</a>", esc(t.mb_members));
        let _ = write!(html, "<a href=\"/console/{mode}/reconciliations\">{}</a>", esc(t.rc_title));
        let _ = write!(html, "<a href=\"/console/{mode}/webhooks\">{}</a>", esc(t.wh_title));
        if nav.admin {
            let _ = write!(html, "<a href=\"/console/{mode}/developers\">{}</a>", esc(t.dev_title));
            let _ = write!(html, "<a href=\"/console/{mode}/audit\">{}</a>", esc(t.audit));
        }
        let (this, other) = if nav.live { (t.live, t.test) } else { (t.test, t.live) };
        let _ = write!(
            html,
            "<span class=\"mode mode-{mode}\">{this}</span><a href=\"{other_path}\">{other}</a></nav>\
             <form method=\"post\" action=\"/console/logout\" class=\"who\"><span>{signed} {email} ({role})</span>\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button>{out}</button></form>",
            this = esc(this),
            other_path = esc(nav.other_mode_path),
            other = esc(other),
            signed = esc(t.signed_in_as),
            email = esc(nav.email),
            role = esc(nav.role),
            csrf = esc(nav.csrf),
            out = esc(t.sign_out),
        );
    }
    html.push_str("</header><main>");
    html.push_str(body);
    html.push_str("</main></body></html>");
    html
}

/// One small stylesheet, served from `/console/style.css` (the CSP allows no inline style): a readable table
/// on a laptop, stacked rows on a phone. A table's first cell (an id: charge, refund, share, order) may break
/// anywhere, so a table too wide for `main` gives way there first: a payment's charges and settlement fit a
/// 1024–1366 px laptop while statuses and transaction numbers stay whole.
pub(crate) const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,'PingFang SC','Microsoft YaHei',\
sans-serif;color:#1d2330;background:#f5f6f8}header{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;\
padding:.6rem 1rem;background:#1d2330;color:#fff}header a{color:#cfe0ff}nav{display:flex;gap:.75rem;\
flex-wrap:wrap;align-items:center;flex:1}.who{display:flex;gap:.5rem;align-items:center;margin:0}\
.mode{padding:0 .4rem;border-radius:3px}.mode-live{background:#c0392b}.mode-test{background:#7f8c8d}\
main{padding:1rem;max-width:72rem;margin:0 auto}h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:1.5rem}\
table{width:100%;border-collapse:collapse;background:#fff}th,td{padding:.4rem .5rem;border-bottom:1px solid \
#e3e6ea;text-align:left;vertical-align:top;overflow-wrap:break-word}th{background:#eef0f3;font-weight:600;\
white-space:nowrap}td:first-child{overflow-wrap:anywhere}\
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin-bottom:1rem}label{display:flex;\
flex-direction:column;font-size:.85rem}label:has(input[type=checkbox]){flex-direction:row;align-items:center;\
gap:.4rem}input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid \
#b8bec7;border-radius:4px}input[type=search]{width:min(30rem,80vw)}\
button{background:#2f6fde;color:#fff;border-color:#2f6fde;cursor:pointer}\
.box{background:#fff;padding:1rem;border-radius:6px;max-width:24rem;margin:2rem auto}.box label{margin-bottom:\
.6rem}.notice{padding:.6rem .8rem;border-radius:4px;background:#e8f5e9}.problem{padding:.6rem .8rem;\
border-radius:4px;background:#fdecea}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;\
background:#fff;padding:.8rem}dt{color:#5b6472}dd{margin:0;word-break:break-all}pre{white-space:pre-wrap;\
word-break:break-all;margin:0;font-size:.8rem}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1rem}.card{background:#fff;\
padding:.8rem;border-radius:6px}.card h3{font-size:.95rem;margin:.8rem 0 .3rem}.chart{display:block;max-width:28rem}\
@media (max-width:40rem){table,thead,tbody,tr,th,td{display:block}thead{display:none}tr{margin-bottom:.6rem;\
background:#fff}td{border:none;padding:.15rem .5rem}td[data-k]::before{content:attr(data-k) ': ';\
color:#5b6472}dl{grid-template-columns:1fr}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(esc("订单 1"), "订单 1");
        assert_eq!(url_value("a b&c=d/订"), "a%20b%26c%3Dd%2F%E8%AE%A2");
        assert_eq!(
            (yuan(0), yuan(5), yuan(12_345), yuan(-101)),
            ("0.00".into(), "0.05".into(), "123.45".into(), "-1.01".into())
        );
        assert_eq!(yuan(i64::MIN), "-92233720368547758.08");
        assert_eq!(when(0), "1970-01-01 08:00:00");
    }
}
