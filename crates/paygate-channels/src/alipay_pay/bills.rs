//! The daily trade bill: `alipay.data.dataservice.bill.downloadurl.query` (bill_type `trade`) answers a URL,
//! believed like every answer once the signature over its raw node checks out; the file there (a ZIP of GBK
//! CSVs) is fetched through the same net policy and kept as it came. The URL's file is not signed: the signed
//! answer that named it is what vouches for it (Alipay's URLs are short-lived and carry their own token).

use super::{channel_problem, refusal, AlipayPay};
use crate::net::{MAX_DOWNLOAD_BYTES, PRIVATE_REFUSAL};
use paygate_domain::Problem;
use serde_json::json;

const METHOD: &str = "alipay.data.dataservice.bill.downloadurl.query";

impl AlipayPay {
    /// The trade bill of `date` (`yyyy-MM-dd`, Beijing) as downloaded. `Ok(None)`: Alipay has no bill for that
    /// day (`isp.bill_not_exist`, also its answer for a day that is not over).
    pub async fn download_trade_bill(&self, date: &str) -> Result<Option<Vec<u8>>, Problem> {
        crate::wechat_pay::bills::check_date(date)?;
        let response = self.call(METHOD, &json!({"bill_type": "trade", "bill_date": date})).await?;
        if !response.is_success() {
            if response.sub_code.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("isp.bill_not_exist")) {
                return Ok(None);
            }
            let (code, message) = refusal(&response);
            return Err(Problem::new(
                paygate_domain::ProblemKind::Channel,
                "channel_declined",
                format!("Alipay refused the bill of {date}: {code} {message}"),
            ));
        }
        let url = response.get("bill_download_url").filter(|u| !u.is_empty()).ok_or_else(|| {
            channel_problem("channel_bad_answer", format!("Alipay's answer to {METHOD} has no bill_download_url"))
        })?;
        // Alipay's own bill URLs are plain http (dwbillcenter.alipay.com); nothing else is fetched.
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(channel_problem(
                "channel_bad_answer",
                format!("Alipay's bill_download_url '{url}' is not http"),
            ));
        }
        let got = match crate::net::download(&self.agent, "GET", url.to_string(), Vec::new(), None, MAX_DOWNLOAD_BYTES)
            .await
        {
            Ok(got) => got,
            Err(why) if why.contains(PRIVATE_REFUSAL) => {
                return Err(channel_problem("channel_target_refused", format!("Alipay was not called: {why}")))
            }
            Err(why) => {
                return Err(channel_problem("channel_unavailable", format!("Alipay's bill did not download: {why}")))
            }
        };
        if got.status != 200 {
            return Err(channel_problem(
                "channel_unavailable",
                format!("Alipay answered the bill download with HTTP {}", got.status),
            ));
        }
        if got.body.is_empty() {
            return Err(channel_problem("channel_bad_answer", format!("Alipay's bill file of {date} is empty")));
        }
        Ok(Some(got.body))
    }
}
