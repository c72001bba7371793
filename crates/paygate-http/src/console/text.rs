//! Every string the console shows, in English and Chinese: one struct, two constants, picked per request by
//! `Accept-Language`. A string missing in one language is a compile error, not a blank.

/// The console's UI strings.
pub(crate) struct Text {
    pub lang: &'static str,
    pub product: &'static str,
    pub login_title: &'static str,
    pub app_id: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub wrong_login: &'static str,
    pub throttled: &'static str,
    pub payments: &'static str,
    pub audit: &'static str,
    pub test: &'static str,
    pub live: &'static str,
    pub search: &'static str,
    pub search_hint: &'static str,
    pub no_match: &'static str,
    pub status: &'static str,
    pub refund_status: &'static str,
    pub any: &'static str,
    pub paid: &'static str,
    pub unpaid: &'static str,
    pub canceled: &'static str,
    pub refunded: &'static str,
    pub not_refunded: &'static str,
    pub channel: &'static str,
    pub uid: &'static str,
    pub created_from: &'static str,
    pub created_to: &'static str,
    pub apply: &'static str,
    pub order: &'static str,
    pub merchant_order_no: &'static str,
    pub amount: &'static str,
    pub created: &'static str,
    pub next_page: &'static str,
    pub no_payments: &'static str,
    pub charges: &'static str,
    pub charge: &'static str,
    pub refunds: &'static str,
    pub transaction_no: &'static str,
    pub channel_order_no: &'static str,
    pub refund: &'static str,
    pub refund_amount_hint: &'static str,
    pub reason: &'static str,
    pub submit_refund: &'static str,
    pub refund_made: &'static str,
    pub refundable: &'static str,
    pub events: &'static str,
    pub deliveries: &'static str,
    pub event: &'static str,
    pub subject: &'static str,
    pub action: &'static str,
    pub actor: &'static str,
    pub object: &'static str,
    pub when: &'static str,
    pub before: &'static str,
    pub after: &'static str,
    pub mode: &'static str,
    pub none: &'static str,
    pub forbidden: &'static str,
    pub cross_site: &'static str,
    pub csrf: &'static str,
    pub not_found: &'static str,
    pub error: &'static str,
    pub signed_in_as: &'static str,
}

pub(crate) const EN: Text = Text {
    lang: "en",
    product: "paygate console",
    login_title: "Sign in",
    app_id: "App id",
    email: "Email",
    password: "Password",
    sign_in: "Sign in",
    sign_out: "Sign out",
    wrong_login: "The app, email or password is wrong.",
    throttled: "Too many failed sign-ins. Wait a minute and try again.",
    payments: "Payments",
    audit: "Audit log",
    test: "Test",
    live: "Live",
    search: "Search",
    search_hint: "Order id, merchant order no., charge id, transaction no. …",
    no_match: "No payment has this id.",
    status: "Status",
    refund_status: "Refunds",
    any: "Any",
    paid: "Paid",
    unpaid: "Unpaid",
    canceled: "Canceled",
    refunded: "Refunded",
    not_refunded: "Not refunded",
    channel: "Channel",
    uid: "Payer (uid)",
    created_from: "Created from",
    created_to: "Created to",
    apply: "Filter",
    order: "Order",
    merchant_order_no: "Merchant order no.",
    amount: "Amount",
    created: "Created",
    next_page: "Older →",
    no_payments: "No payments.",
    charges: "Charges",
    charge: "Charge",
    refunds: "Refunds",
    transaction_no: "Transaction no.",
    channel_order_no: "Channel order no.",
    refund: "Refund",
    refund_amount_hint: "Amount in yuan; empty refunds everything left",
    reason: "Reason",
    submit_refund: "Refund",
    refund_made: "Refund created.",
    refundable: "Refundable",
    events: "Events",
    deliveries: "Deliveries",
    event: "Event",
    subject: "Subject",
    action: "Action",
    actor: "Who",
    object: "Object",
    when: "When",
    before: "Before",
    after: "After",
    mode: "Mode",
    none: "—",
    forbidden: "Your role does not allow this.",
    cross_site: "Cross-site request refused.",
    csrf: "The form expired. Go back, reload the page and try again.",
    not_found: "Not found.",
    error: "Something went wrong",
    signed_in_as: "Signed in as",
};

pub(crate) const ZH: Text = Text {
    lang: "zh-CN",
    product: "paygate 商户控制台",
    login_title: "登录",
    app_id: "应用 ID",
    email: "邮箱",
    password: "密码",
    sign_in: "登录",
    sign_out: "退出",
    wrong_login: "应用、邮箱或密码错误。",
    throttled: "登录失败次数过多，请稍后再试。",
    payments: "支付",
    audit: "操作日志",
    test: "测试",
    live: "正式",
    search: "搜索",
    search_hint: "订单号、商户订单号、支付 ID、交易号…",
    no_match: "没有找到该编号的支付。",
    status: "状态",
    refund_status: "退款",
    any: "全部",
    paid: "已支付",
    unpaid: "未支付",
    canceled: "已取消",
    refunded: "有退款",
    not_refunded: "无退款",
    channel: "渠道",
    uid: "付款用户 (uid)",
    created_from: "创建起",
    created_to: "创建止",
    apply: "筛选",
    order: "订单",
    merchant_order_no: "商户订单号",
    amount: "金额",
    created: "创建时间",
    next_page: "更早 →",
    no_payments: "暂无支付。",
    charges: "支付记录",
    charge: "支付",
    refunds: "退款",
    transaction_no: "交易号",
    channel_order_no: "渠道订单号",
    refund: "退款",
    refund_amount_hint: "金额（元）；留空则全额退款",
    reason: "原因",
    submit_refund: "退款",
    refund_made: "退款已创建。",
    refundable: "可退金额",
    events: "事件",
    deliveries: "推送记录",
    event: "事件",
    subject: "商品标题",
    action: "操作",
    actor: "操作人",
    object: "对象",
    when: "时间",
    before: "之前",
    after: "之后",
    mode: "模式",
    none: "—",
    forbidden: "您的角色无权执行此操作。",
    cross_site: "已拒绝跨站请求。",
    csrf: "表单已过期，请刷新页面后重试。",
    not_found: "未找到。",
    error: "出错了",
    signed_in_as: "当前用户",
};

/// The language `Accept-Language` prefers among ours (highest `q`, earlier on ties); English otherwise.
pub(crate) fn pick(accept_language: Option<&str>) -> &'static Text {
    let mut best: Option<(u16, &'static Text)> = None;
    for item in accept_language.unwrap_or("").split(',').take(32) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map(|q| (q.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0) * 1000.0) as u16)
            .unwrap_or(1000);
        let text = if tag == "zh" || tag.starts_with("zh-") {
            &ZH
        } else if tag == "en" || tag.starts_with("en-") {
            &EN
        } else {
            continue;
        };
        if q > 0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, text));
        }
    }
    best.map(|(_, t)| t).unwrap_or(&EN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks() {
        assert_eq!(pick(None).lang, "en");
        assert_eq!(pick(Some("zh-CN,zh;q=0.9,en;q=0.8")).lang, "zh-CN");
        assert_eq!(pick(Some("en-US,en;q=0.9,zh;q=0.8")).lang, "en");
        assert_eq!(pick(Some("fr, zh-TW;q=0.5")).lang, "zh-CN");
        assert_eq!(pick(Some("en;q=0.2, zh;q=0.7")).lang, "zh-CN");
        assert_eq!(pick(Some("zh;q=0, de")).lang, "en");
        assert_eq!(pick(Some("garbage;;;q=x")).lang, "en");
    }
}
