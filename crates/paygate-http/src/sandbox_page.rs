//! The sandbox pay page a person opens from a test charge's credential: pay or fail.

use crate::request::{self, Incoming};
use crate::HttpResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use paygate_core::sandbox::SandboxResult;
use paygate_core::Paygate;
use paygate_domain::Problem;

fn page(status: StatusCode, html: String) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(Full::new(Bytes::from(html)))
        .expect("static headers are valid")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A problem as a page: internal errors are logged and never shown to whoever opened it.
pub(crate) fn error_page(problem: &Problem) -> HttpResponse {
    let problem = crate::errors::public_problem(problem);
    let status = crate::errors::status(problem.kind);
    page(
        status,
        format!("<!doctype html><meta charset=utf-8><title>paygate sandbox</title><p>{}</p>", escape(&problem.message)),
    )
}

pub(crate) async fn handle(app: &Paygate, req: &Incoming, charge_id: &str) -> HttpResponse {
    if req.method == Method::POST {
        let form = request::Query::parse(std::str::from_utf8(&req.body).unwrap_or(""));
        let paid = match SandboxResult::parse(form.get("result").unwrap_or("")) {
            Err(p) => Err(p),
            Ok(result) => app.sandbox_pay_any(charge_id, result).await,
        };
        let message = match paid {
            Ok((charge, _)) => format!("Charge {} is now {}.", charge.id, charge.status.as_str()),
            Err(p) => return error_page(&p),
        };
        return page(
            StatusCode::OK,
            format!("<!doctype html><meta charset=utf-8><title>paygate sandbox</title><p>{}</p>", escape(&message)),
        );
    }
    let charge = match app.store.find_test_charge(charge_id).await {
        Ok(Some(c)) if c.id == charge_id => c,
        Ok(_) => {
            return page(
                StatusCode::NOT_FOUND,
                "<!doctype html><meta charset=utf-8><p>No such test-mode charge.</p>".into(),
            )
        }
        Err(p) => return error_page(&p),
    };
    let yuan = format!("{}.{:02}", charge.amount.fen() / 100, charge.amount.fen() % 100);
    page(
        StatusCode::OK,
        format!(
            "<!doctype html><meta charset=utf-8><title>paygate sandbox</title>\
             <h1>paygate sandbox</h1><p>{subject}</p><p>¥{yuan} via {channel} — status: <b>{status}</b></p>\
             <form method=post><button name=result value=success>Pay</button> \
             <button name=result value=fail>Fail</button></form>",
            subject = escape(&charge.subject),
            channel = escape(&charge.channel),
            status = charge.status.as_str(),
        ),
    )
}
