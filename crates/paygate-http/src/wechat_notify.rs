//! WeChat Pay's notifications: `POST /notify/wechat/{app_id}/{test|live}` (v2 XML) and
//! `POST /notify/wechat/v3/{app_id}/{test|live}` (v3 JSON). Answers are WeChat's own formats: v2 the exact SUCCESS
//! XML (anything else makes WeChat retry), v3 204 or a 4xx/5xx `{"code":"FAIL","message":…}`. Every refusal is
//! in that format too (wrong path, method, oversized body), never a Ping++ error.

use crate::request::Incoming as Req;
use crate::HttpResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use paygate_channels::wechat::v2::{self, Fields, SUCCESS_REPLY};
use paygate_core::wechat_notify::NotifyRefusal;
use paygate_core::Paygate;

/// The route template of a notification path (request logs and metrics), if it is one.
pub(crate) fn template(rest: &[&str]) -> &'static str {
    match rest {
        ["v3", _, _] => "/notify/wechat/v3/*/*",
        [_, _] => "/notify/wechat/*/*",
        _ => "/notify/wechat",
    }
}

/// `rest`: the path below `/notify/wechat/`; `body`: `None` when it was too large or too slow.
pub(crate) async fn handle(app: &Paygate, req: &Req, rest: &[&str], body: Option<&Bytes>) -> HttpResponse {
    let v3 = rest.first() == Some(&"v3");
    let refusal = |status: u16, message: &str| {
        if v3 {
            v3_fail(status, message)
        } else {
            v2_fail(status, message)
        }
    };
    let (app_id, mode) = match rest {
        ["v3", app_id, mode] | [app_id, mode] if *app_id != "v3" => (*app_id, *mode),
        _ => return refusal(404, "not a notification path: /notify/wechat[/v3]/{app_id}/{test|live}"),
    };
    if req.method != Method::POST {
        return refusal(405, "notifications are POST");
    }
    let Some(body) = body else {
        return refusal(413, "body too large or too slow");
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return refusal(400, "body is not UTF-8");
    };
    let result = if v3 {
        app.wechat_notify_v3(app_id, mode, |name| req.header(name).map(str::to_string), text).await
    } else {
        app.wechat_notify_v2(app_id, mode, text).await
    };
    match result {
        Ok(()) if v3 => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
        Ok(()) => xml(StatusCode::OK, SUCCESS_REPLY.to_string()),
        Err(NotifyRefusal { status, message }) => refusal(status, &message),
    }
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

fn xml(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let value = hyper::header::HeaderValue::from_static("text/xml; charset=utf-8");
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    response
}

/// v2's FAIL reply: `return_code FAIL` with the reason (WeChat retries).
fn v2_fail(status: u16, message: &str) -> HttpResponse {
    let fields: Fields = [("return_code", "FAIL"), ("return_msg", message)].into_iter().collect();
    xml(status_of(status), v2::render_xml(&fields))
}

/// v3's FAIL reply: `{"code":"FAIL","message":…}` with a 4xx/5xx status (WeChat retries).
fn v3_fail(status: u16, message: &str) -> HttpResponse {
    let body = serde_json::json!({"code": "FAIL", "message": message}).to_string();
    crate::request::json(status_of(status), body.into_bytes())
}
