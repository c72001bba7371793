//! `paygate sim …`: payment channel simulators for tests and offline development (crate paygate-sim).

use clap::{Args, Subcommand};
use paygate_domain::Problem;
use paygate_sim::alipay::config::{AppConfig, SimConfig as AlipaySimConfig};
use paygate_sim::alipay::AlipaySim;
use paygate_sim::wechat::config::{MerchantConfig, SimConfig, TlsConfig};
use paygate_sim::wechat::WechatSim;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// The WeChat Pay side of API v2 (XML) and v3 (JSON), in memory.
    ///
    /// Verifies every request's signature (v2 MD5/HMAC-SHA256 with the merchant's API key; v3 Authorization
    /// with the merchant's RSA public key), keeps its own orders and refunds under WeChat's rules (refund ≤ paid,
    /// ≤ 50 partial refunds, closeorder not before 5 minutes), signs its answers (v3: with its own platform key,
    /// published as a "WeChat Pay public key" id + PEM), and notifies the order's notify_url (v2 signed XML,
    /// refunds with req_info; v3 signed JSON with an AEAD resource), retrying on WeChat's schedule.
    ///
    /// v2 routes: /pay/unifiedorder /pay/micropay /pay/orderquery /pay/closeorder /secapi/pay/refund
    /// /pay/refundquery /secapi/pay/reverse /pay/downloadbill and profit sharing (/pay/profitsharing…,
    /// /secapi/pay/…profitsharing…). v3 routes: /v3/pay/transactions/{jsapi,native,app,h5}, …/id/{id},
    /// …/out-trade-no/{no}[/close], /v3/refund/domestic/refunds[/{out_refund_no}], /v3/bill/tradebill,
    /// /v3/profitsharing/…. The test's side is JSON under /sim/ (GET /sim/config; POST /sim/wechat/pay, /fail,
    /// /userpaying, /codes, /refunds/settle, /faults, /settings, /clock, /merchants; GET /sim/wechat/orders,
    /// /sim/wechat/notifications) and a payer page at GET /sim/wechat.
    ///
    /// Reconciliation: bills (downloadbill, tradebill) carry payments on the day paid, refunds on the day they
    /// succeeded, or while PROCESSING (settings {"hold_refunds": true}) on the day applied for, with 退款状态
    /// PROCESSING; fee 0.6 % half up. POST /sim/wechat/pay takes {code_url} (weixin://wxpay/bizpayurl?pr=…) as
    /// well as {out_trade_no} or {transaction_id}. POST /sim/wechat/faults {"kind": "drop_notify",
    /// "out_trade_no"?, "count"?} never sends the next notification(s) (of that order). POST
    /// /sim/wechat/bills/doctor {mch_id?, out_trade_no, omit?: true, amount?: FEN, fee?: FEN, at?: UNIX,
    /// clear?: true} makes bills written from then on leave the order out, bill another amount or fee, or bill
    /// the payment at another time (so on another day). POST /sim/wechat/bills/seed {mch_id?, rows:
    /// [{out_trade_no, transaction_id?, amount, paid_at}]} adds paid NATIVE orders without notifications (up to
    /// 64 MiB of JSON per call: 100 000 rows is about 10 MiB).
    ///
    /// With --tls-cert/--tls-key it serves HTTPS; with --client-ca, /secapi/ also requires a merchant client
    /// certificate signed by that CA (mutual TLS), as WeChat does.
    ///
    /// On start it prints one JSON line to stdout: {"listen", "public_key_id", "public_key_pem"}.
    #[command(verbatim_doc_comment)]
    Wechat(SimWechatArgs),
    /// The Alipay side of the OpenAPI gateway (gateway.do, RSA2), in memory.
    ///
    /// Verifies every call's RSA2 signature with the app's public key (GET query or urlencoded POST form),
    /// dispatches on `method`, keeps its own trades under Alipay's rules (WAIT_BUYER_PAY, TRADE_SUCCESS,
    /// TRADE_CLOSED, TRADE_FINISHED; close only while waiting; refunds in yuan, out_request_no idempotent, never
    /// more than paid; royalty receivers bound first, settlements capped at 30 %), answers
    /// {"<method>_response": {...}, "sign": "..."} signed with its own Alipay key, and POSTs signed form
    /// notifications (trade_status_sync) to the trade's notify_url, retrying on Alipay's schedule (4m 10m 10m 1h
    /// 2h 6h 15h, divided by --notify-time-scale) until the answer is exactly `success`.
    ///
    /// Methods: alipay.trade.precreate (qr_code), .wap.pay and .page.pay (the cashier page), .app.pay (the
    /// order string, as the Alipay app submits it), .pay (payment code), .query, .close, .cancel, .refund,
    /// .fastpay.refund.query, .royalty.relation.bind / .unbind, .order.settle, and
    /// alipay.data.dataservice.bill.downloadurl.query (a stored ZIP of GBK CSV bills served by the simulator).
    /// Errors: 40002 (isv.invalid-signature, isv.invalid-app-id, ...), 40004 with ACQ.* sub_codes.
    ///
    /// The test's side is JSON under /sim/alipay/: GET config, trades, notifications; POST apps, settings,
    /// clock, pay ({out_trade_no, late?}: late pays a closed trade), scan / wait (the buyer scanned and stays
    /// waiting), fail, finish, codes ({auth_code, outcome: PAY|WAIT|FAIL}), faults ({method?, kind:
    /// timeout|drop|20000|40004|duplicate_notify|drop_notify, sub_code?, out_trade_no?, count?}: drop_notify never
    /// sends the next notification(s), of that trade when out_trade_no is given); GET /sim/alipay/qr/{trade_no}
    /// is the page a QR code opens.
    ///
    /// Reconciliation: the trade bill's 服务费（元） is the 0.6 % fee (half up), negative on payments, given back
    /// (positive) on refunds. POST /sim/alipay/bills/doctor {app_id?, out_trade_no, omit?: true, amount?: FEN,
    /// fee?: FEN, at?: UNIX, clear?: true} makes bills written from then on leave the trade out, bill another
    /// amount or fee, or bill the payment at another time. POST /sim/alipay/bills/seed {app_id?, rows:
    /// [{out_trade_no, trade_no?, amount, paid_at}]} adds paid trades without notifications.
    ///
    /// On start it prints one JSON line to stdout: {"listen", "alipay_public_key_pem"}.
    #[command(verbatim_doc_comment)]
    Alipay(SimAlipayArgs),
}

#[derive(Debug, Args)]
pub struct SimAlipayArgs {
    /// Address to listen on (port 0: any free port; the printed line says which).
    #[arg(long, env = "PAYGATE_SIM_LISTEN", default_value = "127.0.0.1:9391")]
    pub listen: String,
    /// JSON file: {"apps": [{app_id, app_public_key_pem, seller_id}], alipay_private_key_pem, notify_time_scale,
    /// timeout_ms, notify_timeout_ms, royalty_max_ratio_bps, visible_before_scan}. Flags below add to it.
    #[arg(long, env = "PAYGATE_SIM_CONFIG")]
    pub config: Option<String>,
    /// An app id to add (with --app-public-key-file).
    #[arg(long, requires = "app_public_key_file")]
    pub app_id: Option<String>,
    /// PEM file of the app's RSA public key (verifies its requests).
    #[arg(long, requires = "app_id")]
    pub app_public_key_file: Option<String>,
    /// The app's seller id (2088...); derived from the app id when absent.
    #[arg(long, requires = "app_id")]
    pub seller_id: Option<String>,
    /// PEM file (PKCS#8) of the Alipay private key to sign with; generated at start when absent.
    #[arg(long)]
    pub alipay_private_key_file: Option<String>,
    /// Divide Alipay's notification retry delays by this (1000: 4 minutes become 240 ms).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub notify_time_scale: Option<u64>,
    /// Let precreated / page / wap trades be queried and closed before the buyer scans (Alipay: not).
    #[arg(long)]
    pub visible_before_scan: bool,
}

impl SimAlipayArgs {
    pub fn config(&self) -> Result<AlipaySimConfig, Problem> {
        let mut config = match &self.config {
            Some(path) => AlipaySimConfig::from_file(path).map_err(|e| Problem::invalid("config", e))?,
            None => AlipaySimConfig::default(),
        };
        let read = |flag: &str, p: &str| {
            std::fs::read_to_string(p).map_err(|e| Problem::invalid(flag, format!("Cannot read {p}: {e}")))
        };
        if let (Some(app_id), Some(key)) = (&self.app_id, &self.app_public_key_file) {
            config.apps.push(AppConfig {
                app_id: app_id.clone(),
                app_public_key_pem: read("app-public-key-file", key)?,
                seller_id: self.seller_id.clone().unwrap_or_default(),
            });
        }
        if let Some(p) = &self.alipay_private_key_file {
            config.alipay_private_key_pem = read("alipay-private-key-file", p)?;
        }
        if let Some(s) = self.notify_time_scale {
            config.settings.notify_time_scale = s;
        }
        config.settings.visible_before_scan |= self.visible_before_scan;
        Ok(config)
    }
}

#[derive(Debug, Args)]
pub struct SimWechatArgs {
    /// Address to listen on (port 0: any free port; the printed line says which).
    #[arg(long, env = "PAYGATE_SIM_LISTEN", default_value = "127.0.0.1:9390")]
    pub listen: String,
    /// JSON file: {"merchants": [{mch_id, appid, api_key, api_v3_key, merchant_serial, merchant_public_key_pem,
    /// refund_notify_url}], platform_private_key_pem, public_key_id, tls: {cert_pem, key_pem, client_ca_pem},
    /// close_min_age_seconds, notify_time_scale, hold_refunds, timeout_ms, notify_timeout_ms, reorder_hold_ms,
    /// share_max_ratio_bps}. Flags below add to it.
    #[arg(long, env = "PAYGATE_SIM_CONFIG")]
    pub config: Option<String>,
    /// A merchant id to add (with --appid and --api-key).
    #[arg(long, requires_all = ["appid", "api_key"])]
    pub mch_id: Option<String>,
    /// The merchant's appid.
    #[arg(long)]
    pub appid: Option<String>,
    /// The merchant's v2 API key.
    #[arg(long, env = "PAYGATE_SIM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The merchant's 32-byte APIv3 key.
    #[arg(long, env = "PAYGATE_SIM_API_V3_KEY", hide_env_values = true)]
    pub api_v3_key: Option<String>,
    /// The merchant's API certificate serial (v3 `serial_no`).
    #[arg(long)]
    pub merchant_serial: Option<String>,
    /// PEM file of the merchant's RSA public key (verifies v3 requests).
    #[arg(long)]
    pub merchant_public_key_file: Option<String>,
    /// Seconds before an order may be closed (WeChat: 300).
    #[arg(long)]
    pub close_min_age_seconds: Option<i64>,
    /// Divide WeChat's notification retry delays by this (1000: 15 s becomes 15 ms).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub notify_time_scale: Option<u64>,
    /// Keep refunds PROCESSING until POST /sim/wechat/refunds/settle.
    #[arg(long)]
    pub hold_refunds: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<String>,
    /// PEM CA of merchants' API certificates: /secapi/ then requires a client certificate it signed (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<String>,
}

impl SimWechatArgs {
    pub fn config(&self) -> Result<SimConfig, Problem> {
        let mut config = match &self.config {
            Some(path) => SimConfig::from_file(path).map_err(|e| Problem::invalid("config", e))?,
            None => SimConfig::default(),
        };
        if let Some(mch_id) = &self.mch_id {
            let public = match &self.merchant_public_key_file {
                Some(p) => std::fs::read_to_string(p)
                    .map_err(|e| Problem::invalid("merchant-public-key-file", format!("Cannot read {p}: {e}")))?,
                None => String::new(),
            };
            config.merchants.push(MerchantConfig {
                mch_id: mch_id.clone(),
                appid: self.appid.clone().unwrap_or_default(),
                api_key: self.api_key.clone().unwrap_or_default(),
                api_v3_key: self.api_v3_key.clone().unwrap_or_default(),
                merchant_serial: self.merchant_serial.clone().unwrap_or_default(),
                merchant_public_key_pem: public,
                refund_notify_url: String::new(),
            });
        }
        if let Some(s) = self.close_min_age_seconds {
            config.settings.close_min_age_seconds = s;
        }
        if let Some(s) = self.notify_time_scale {
            config.settings.notify_time_scale = s;
        }
        config.settings.hold_refunds |= self.hold_refunds;
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let read = |flag: &str, p: &str| {
                std::fs::read_to_string(p).map_err(|e| Problem::invalid(flag, format!("Cannot read {p}: {e}")))
            };
            config.tls = Some(TlsConfig {
                cert_pem: read("tls-cert", cert)?,
                key_pem: read("tls-key", key)?,
                client_ca_pem: self.client_ca.as_deref().map(|p| read("client-ca", p)).transpose()?,
            });
        }
        Ok(config)
    }
}

pub async fn run(command: SimCommand, until: impl std::future::Future<Output = ()>) -> Result<(), Problem> {
    match command {
        SimCommand::Wechat(args) => {
            let sim = WechatSim::new(args.config()?).map_err(|e| Problem::invalid("config", e))?;
            let (addr, task) = sim.start(&args.listen).await.map_err(|e| Problem::invalid("listen", e))?;
            let line = serde_json::json!({
                "listen": addr.to_string(),
                "public_key_id": sim.public_key_id(),
                "public_key_pem": sim.public_key_pem(),
            });
            println!("{line}");
            tracing::info!(%addr, public_key_id = sim.public_key_id(), "WeChat Pay simulator listening");
            until.await;
            task.abort();
            Ok(())
        }
        SimCommand::Alipay(args) => {
            let sim = AlipaySim::new(args.config()?).map_err(|e| Problem::invalid("config", e))?;
            let (addr, task) = sim.start(&args.listen).await.map_err(|e| Problem::invalid("listen", e))?;
            let line = serde_json::json!({
                "listen": addr.to_string(),
                "alipay_public_key_pem": sim.alipay_public_key_pem(),
            });
            println!("{line}");
            tracing::info!(%addr, "Alipay simulator listening");
            until.await;
            task.abort();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn flags_add_a_merchant_and_settings() {
        let cli = Cli::try_parse_from([
            "paygate",
            "sim",
            "wechat",
            "--listen",
            "127.0.0.1:0",
            "--mch-id",
            "1900000109",
            "--appid",
            "wx1",
            "--api-key",
            "k",
            "--notify-time-scale",
            "1000",
            "--close-min-age-seconds",
            "0",
            "--hold-refunds",
        ])
        .unwrap();
        let Command::Sim(super::SimCommand::Wechat(args)) = cli.command else { panic!("sim wechat") };
        let config = args.config().unwrap();
        assert_eq!((config.merchants.len(), config.merchants[0].appid.as_str()), (1, "wx1"));
        let s = &config.settings;
        assert_eq!((s.notify_time_scale, s.close_min_age_seconds, s.hold_refunds), (1000, 0, true));
        assert!(Cli::try_parse_from(["paygate", "sim", "wechat", "--mch-id", "1"]).is_err(), "appid and key needed");
        assert!(Cli::try_parse_from(["paygate", "sim", "wechat", "--notify-time-scale", "0"]).is_err());
        assert!(Cli::try_parse_from(["paygate", "sim", "wechat", "--tls-cert", "c.pem"]).is_err(), "needs the key");
    }

    #[test]
    fn alipay_flags_add_an_app_and_settings() {
        let dir = std::env::temp_dir().join(format!("paygate-sim-alipay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("app.pem");
        std::fs::write(&key, "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n").unwrap();
        let key = key.to_str().unwrap();
        let cli = Cli::try_parse_from([
            "paygate",
            "sim",
            "alipay",
            "--listen",
            "127.0.0.1:0",
            "--app-id",
            "2021000000000001",
            "--app-public-key-file",
            key,
            "--notify-time-scale",
            "1000",
            "--visible-before-scan",
        ])
        .unwrap();
        let Command::Sim(super::SimCommand::Alipay(args)) = cli.command else { panic!("sim alipay") };
        let config = args.config().unwrap();
        assert_eq!((config.apps.len(), config.apps[0].app_id.as_str()), (1, "2021000000000001"));
        assert_eq!((config.settings.notify_time_scale, config.settings.visible_before_scan), (1000, true));
        assert!(Cli::try_parse_from(["paygate", "sim", "alipay", "--app-id", "1"]).is_err(), "the key is needed");
        assert!(Cli::try_parse_from(["paygate", "sim", "alipay", "--notify-time-scale", "0"]).is_err());
    }
}
