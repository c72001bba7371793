//! The 知晓云 (MinCloud) `hserve` face, as the official `minapp-sdk` calls it: the app is found
//! by `X-Hydrogen-Client-ID`, end users authenticate with `Authorization: Hydrogen-r1 <token>`,
//! the app's server with its secret key. Errors are `{"error_msg", "message"}` with an HTTP
//! status, which is what the SDK reads. Every answer carries CORS headers so the browser SDK
//! works from another origin.

mod query;
mod render;

use crate::request::{self, Incoming, JsonBody};
use crate::HttpResponse;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use paygate_core::hserve::{HserveCaller, PaymentInput, RecordRef};
use paygate_core::shares::ShareInput;
use paygate_core::{Caller, Paygate};
use paygate_domain::ids::{OrderId, ProfitShareId};
use paygate_domain::shares::ShareKind;
use paygate_domain::{Amount, Problem, ProblemKind};
use serde_json::{json, Value};

type Answer = Result<(StatusCode, Value), Problem>;

pub(crate) async fn handle(app: &Paygate, req: &Incoming, path: &[&str]) -> HttpResponse {
    let mut response = if req.method == Method::OPTIONS {
        request::json(StatusCode::NO_CONTENT, Vec::new())
    } else {
        match dispatch(app, req, path).await {
            Ok((status, value)) => request::json(status, value.to_string().into_bytes()),
            Err(problem) => error_response(&problem),
        }
    };
    cors(req, &mut response);
    response
}

fn cors(req: &Incoming, response: &mut HttpResponse) {
    let headers = response.headers_mut();
    let allow_headers = req.header("access-control-request-headers").unwrap_or(
        "Content-Type, Authorization, X-Hydrogen-Client-ID, X-Hydrogen-Client-Version, \
             X-Hydrogen-Client-Platform, X-Hydrogen-Client-SDK-Type, X-Hydrogen-Env-ID",
    );
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS"),
        ("access-control-allow-headers", allow_headers),
        ("access-control-max-age", "600"),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

/// A refusal the router made before this face's handler ran, with CORS like every answer here
/// (without it the browser SDK sees a TypeError instead of the error).
pub(crate) fn error_with_cors(req: &Incoming, problem: &Problem) -> HttpResponse {
    let mut response = error_response(problem);
    cors(req, &mut response);
    response
}

fn error_response(problem: &Problem) -> HttpResponse {
    // 知晓云 answers a state conflict as a plain 400.
    let status = match problem.kind {
        ProblemKind::Conflict => StatusCode::BAD_REQUEST,
        kind => crate::errors::status(kind),
    };
    let problem = crate::errors::public_problem(problem);
    let body = json!({
        "error_msg": problem.message, "message": problem.message, "error_code": problem.code, "param": problem.param,
    });
    request::json(status, body.to_string().into_bytes())
}

async fn dispatch(app: &Paygate, req: &Incoming, path: &[&str]) -> Answer {
    let m = &req.method;
    match path {
        ["v2.0", "login", "anonymous"] if m == Method::POST => {
            let client = client(app, req).await?;
            Ok((StatusCode::CREATED, render::session(&app.hserve_anonymous_login(&client).await?)))
        }
        ["v2.1", "register" | "login", "username"] if m == Method::POST => {
            let client = client(app, req).await?;
            let b = body(req)?;
            let username = b.required_string("username")?;
            let password = b.required_string("password")?;
            let session = if path[1] == "register" {
                app.hserve_register(&client, &username, &password).await?
            } else {
                app.hserve_login(&client, &username, &password).await?
            };
            Ok((StatusCode::CREATED, render::session(&session)))
        }
        ["v2.0", "session", "destroy"] if m == Method::POST => {
            let token = token(req)?;
            app.hserve_authenticate(req.header("x-hydrogen-client-id"), &token).await?;
            app.hserve_logout(&token).await?;
            Ok((StatusCode::CREATED, json!({"message": "success", "status": "ok"})))
        }
        [_, "user", "info", id] if m == Method::GET => {
            let caller = authenticate(app, req).await?;
            let id = id.parse::<i64>().map_err(|_| Problem::not_found("user", id))?;
            Ok((StatusCode::OK, render::user(&app.hserve_user(&caller, id).await?)))
        }
        ["v2.2", "idp", "pay", "order"] if m == Method::POST => create_payment(app, req).await,
        ["v2.2", "idp", "pay", "order"] if m == Method::GET => {
            let caller = authenticate(app, req).await?;
            let q = query::parse(&req.query)?;
            let (records, total) = app.hserve_records(&caller, &q.query).await?;
            Ok((StatusCode::OK, render::record_list(&records, total, &q, &req.query)))
        }
        [_, "idp", "pay", "order", reference] if m == Method::GET => {
            let caller = authenticate(app, req).await?;
            let record = app.hserve_record(&caller, reference).await?;
            let keys = req.query.text("keys");
            Ok((StatusCode::OK, render::select_keys(render::record(&record), keys.as_deref())))
        }
        ["v2.2", "idp", "pay", "refund"] if m == Method::POST => refund(app, req).await,
        ["v2.2", "idp", "pay", which @ ("wechat" | "alipay"), op] if m == Method::POST => {
            share(app, req, which, op).await
        }
        ["v2.2", "idp", "pay", "wechat", "profit-sharing", "finish"] if m == Method::POST => {
            let caller = authenticate(app, req).await?;
            let server = app.hserve_server(&caller)?;
            let record = app.record_by(&caller, &RecordRef::TradeNo(body(req)?.required_string("trade_no")?)).await?;
            app.finish_sharing(&server, &OrderId::from_stored(record.order.id.clone())).await?;
            Ok((StatusCode::OK, render::wechat_share_answer(&record, None)))
        }
        ["v2.2", "idp", "pay", "profit-sharing", "return"] if m == Method::POST => {
            let caller = authenticate(app, req).await?;
            let server = app.hserve_server(&caller)?;
            let b = body(req)?;
            let record = app.record_by(&caller, &RecordRef::TradeNo(b.required_string("trade_no")?)).await?;
            let share_id = b.required_string("profit_sharing_id")?;
            let (order, share_id) = (OrderId::from_stored(record.order.id.clone()), ProfitShareId::parse(&share_id)?);
            let share = app.return_share(&server, &order, &share_id, b.int("amount")?).await?;
            Ok((StatusCode::OK, share.to_json()))
        }
        _ => Err(crate::errors::route_not_found(req)),
    }
}

/// An empty body is an empty object: the SDK posts logins and logouts without data.
fn body(req: &Incoming) -> Result<JsonBody, Problem> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return JsonBody::parse(b"{}");
    }
    req.json_body()
}

async fn client(app: &Paygate, req: &Incoming) -> Result<Caller, Problem> {
    let id = req
        .header("x-hydrogen-client-id")
        .ok_or_else(|| Problem::authentication("X-Hydrogen-Client-ID is required."))?;
    app.hserve_client(id).await.map(crate::errors::log_app)
}

fn token(req: &Incoming) -> Result<String, Problem> {
    let header = req
        .header("authorization")
        .ok_or_else(|| Problem::authentication("Log in first: Authorization: Hydrogen-r1 <token> is required."))?;
    let token = header.strip_prefix("Hydrogen-r1 ").or_else(|| header.strip_prefix("Bearer ")).ok_or_else(|| {
        Problem::authentication(
            "Unsupported Authorization scheme: use 'Hydrogen-r1 <token>' (or 'Bearer <secret key>' from a server).",
        )
    })?;
    Ok(token.trim().to_string())
}

async fn authenticate(app: &Paygate, req: &Incoming) -> Result<HserveCaller, Problem> {
    let caller = app.hserve_authenticate(req.header("x-hydrogen-client-id"), &token(req)?).await?;
    crate::errors::log_app(caller.caller().clone());
    Ok(caller)
}

/// A JSON value as yuan text: numbers keep their decimal text, strings are taken as written.
fn yuan_text(b: &JsonBody, name: &str) -> Result<Option<String>, Problem> {
    match b.value(name) {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::String(s) => Ok(Some(s)),
        _ => Err(Problem::invalid(name, format!("{name} must be an amount in yuan."))),
    }
}

async fn create_payment(app: &Paygate, req: &Incoming) -> Answer {
    let caller = authenticate(app, req).await?;
    let b = body(req)?;
    let schema_id = match b.value("merchandise_schema_id") {
        Value::Null => None,
        Value::Number(n) => {
            Some(n.as_i64().ok_or_else(|| {
                Problem::invalid("merchandise_schema_id", "merchandise_schema_id must be an integer.")
            })?)
        }
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(
            s.parse()
                .map_err(|_| Problem::invalid("merchandise_schema_id", "merchandise_schema_id must be an integer."))?,
        ),
        _ => return Err(Problem::invalid("merchandise_schema_id", "merchandise_schema_id must be an integer.")),
    };
    let record_id = match b.value("merchandise_record_id") {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => return Err(Problem::invalid("merchandise_record_id", "merchandise_record_id must be a string.")),
    };
    let profit_sharing = match b.value("profit_sharing") {
        Value::Null => false,
        Value::Bool(v) => v,
        _ => return Err(Problem::invalid("profit_sharing", "profit_sharing must be true or false.")),
    };
    let input = PaymentInput {
        gateway_type: b.required_string("gateway_type")?,
        total_cost: yuan_text(&b, "total_cost")?.ok_or_else(|| Problem::missing("total_cost"))?,
        merchandise_description: b.string("merchandise_description")?.unwrap_or_default(),
        merchandise_schema_id: schema_id,
        merchandise_record_id: record_id,
        merchandise_snapshot: b.value("merchandise_snapshot"),
        profit_sharing,
        openid: b.string("openid")?,
    };
    let created = app.hserve_pay(&caller, input, &req.base_url(), &req.peer.ip().to_string()).await?;
    Ok((StatusCode::CREATED, render::created_payment(&created)))
}

async fn refund(app: &Paygate, req: &Incoming) -> Answer {
    let caller = authenticate(app, req).await?;
    let b = body(req)?;
    let by = if let Some(id) = b.int("order_id")? {
        RecordRef::Id(id)
    } else if let Some(t) = b.string("trade_no")? {
        RecordRef::TradeNo(t)
    } else if let Some(t) = b.string("transaction_no")? {
        RecordRef::TransactionNo(t)
    } else {
        return Err(Problem::invalid("order_id", "Name the order to refund: order_id, trade_no or transaction_no."));
    };
    let amount = yuan_text(&b, "refund_amount")?.map(|t| Amount::parse_yuan("refund_amount", &t)).transpose()?;
    let memo = b.string("memo")?.map(|m| paygate_domain::validate::text("memo", &m, 255)).transpose()?;
    let refunded = app.hserve_refund(&caller, by, amount, memo).await;
    let (refund, record) = refunded.map_err(|p| renamed(p, &[("amount", "refund_amount"), ("description", "memo")]))?;
    Ok((StatusCode::CREATED, render::refund(&refund, &record)))
}

/// The core's rules name the core's fields (`amount` of a refund); this face's caller sent them
/// under its own names, and an error must name what the caller sent.
pub(crate) fn renamed(mut problem: Problem, names: &[(&str, &str)]) -> Problem {
    if let Some((_, face)) = names.iter().find(|(core, _)| problem.param.as_deref() == Some(*core)) {
        problem.param = Some((*face).to_string());
    }
    problem
}

async fn share(app: &Paygate, req: &Incoming, which: &str, op: &str) -> Answer {
    let kind = match (which, op) {
        ("wechat", "profit-sharing") => ShareKind::WechatSingle,
        ("wechat", "multi-profit-sharing") => ShareKind::WechatMulti,
        ("alipay", "profit-sharing") => ShareKind::Alipay,
        _ => return Err(crate::errors::route_not_found(req)),
    };
    let caller = authenticate(app, req).await?;
    let b = body(req)?;
    let trade_no = b.required_string("trade_no")?;
    let appid = b.string("appid")?;
    let input = ShareInput { kind, receivers: b.value("receivers"), out_order_no: b.string("out_order_no")? };
    let (share, record) = app.hserve_share(&caller, &trade_no, appid.as_deref(), input).await?;
    Ok((
        StatusCode::OK,
        if kind == ShareKind::Alipay {
            render::alipay_share_answer(&record, &share)
        } else {
            render::wechat_share_answer(&record, Some(&share))
        },
    ))
}
