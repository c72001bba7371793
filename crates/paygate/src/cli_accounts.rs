//! `paygate channel-account …` and the master-key options (`--master-keys`, `--master-key-file`)
//! that `serve`, `worker` and these commands take. Secret fields are read from files, never
//! from argument values (argv is visible to every local user); `--json` output never holds a
//! secret.

use crate::cli::Database;
use clap::{Args, Subcommand};
use paygate_core::secret_box::MasterKeys;
use paygate_core::{Paygate, Policy, SystemClock};
use paygate_domain::accounts::{AccountPatch, Provider};
use paygate_domain::{Mode, Problem};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Where the master keys for channel-account secrets come from. `Debug` never shows them.
#[derive(Args, Clone, Default)]
pub struct MasterKeyArgs {
    /// Master keys sealing channel-account secrets: KEY_ID:BASE64(32 bytes)[,KEY_ID:BASE64…]; the first
    /// seals, the others still open (rotation). Prefer the environment or --master-key-file.
    #[arg(long, env = "PAYGATE_MASTER_KEYS", hide_env_values = true, conflicts_with = "master_key_file")]
    pub master_keys: Option<String>,
    /// A file holding the master keys in the same form (comma- or newline-separated).
    #[arg(long, env = "PAYGATE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<String>,
}

impl std::fmt::Debug for MasterKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.master_keys.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("MasterKeyArgs")
            .field("master_keys", &keys)
            .field("master_key_file", &self.master_key_file)
            .finish()
    }
}

impl MasterKeyArgs {
    /// The configured keys (none configured: empty — `serve` still starts, setting an account is refused).
    pub fn keys(&self) -> Result<MasterKeys, Problem> {
        match (&self.master_keys, &self.master_key_file) {
            (Some(text), _) => MasterKeys::parse(text),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Problem::invalid("master-key-file", format!("Cannot read {path}: {e}")))?;
                MasterKeys::parse(&text)
            }
            (None, None) => Ok(MasterKeys::default()),
        }
    }
}

#[derive(Debug, Args)]
pub struct Target {
    /// The app's id (app_…).
    #[arg(long = "app")]
    pub app_id: String,
    #[arg(long, value_parser = ["test", "live"], default_value = "test")]
    pub mode: String,
    #[arg(long, value_parser = ["wechat", "alipay"])]
    pub provider: String,
}

#[derive(Debug, Subcommand)]
pub enum ChannelAccountCommand {
    /// Create or change an account: options given replace, --clear removes, the rest (a secret
    /// file not given) is kept.
    Set(Box<SetArgs>),
    /// An account without its secrets.
    Show {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    /// The accounts of an app and mode.
    List {
        /// The app's id (app_…).
        #[arg(long = "app")]
        app_id: String,
        #[arg(long, value_parser = ["test", "live"], default_value = "test")]
        mode: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    Remove {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        db: Database,
    },
    /// Re-encrypt every account's secrets under the current (first) master key.
    Rekey {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        master: MasterKeyArgs,
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub target: Target,
    /// wechat: merchant number.
    #[arg(long)]
    pub mch_id: Option<String>,
    /// wechat: the AppID payments are made for.
    #[arg(long)]
    pub appid: Option<String>,
    /// wechat: API version (default v3).
    #[arg(long, value_parser = ["v2", "v3"])]
    pub api_version: Option<String>,
    /// wechat: the merchant certificate's serial number (v3).
    #[arg(long)]
    pub merchant_serial_no: Option<String>,
    /// wechat: the WeChat Pay public key's id (with --wechatpay-public-key-file).
    #[arg(long)]
    pub wechatpay_public_key_id: Option<String>,
    /// wechat: service-provider mode's sub-merchant.
    #[arg(long)]
    pub sub_mch_id: Option<String>,
    #[arg(long)]
    pub sub_appid: Option<String>,
    /// wechat: API base URL (default https://api.mch.weixin.qq.com).
    #[arg(long)]
    pub api_base_url: Option<String>,
    /// wechat: file holding the API v2 key (32 characters).
    #[arg(long, value_name = "FILE")]
    pub api_v2_key_file: Option<String>,
    /// wechat: file holding the API v3 key (32 bytes).
    #[arg(long, value_name = "FILE")]
    pub api_v3_key_file: Option<String>,
    /// wechat: PEM file of the merchant's RSA private key.
    #[arg(long, value_name = "FILE")]
    pub merchant_private_key_file: Option<String>,
    /// wechat: PEM file of the platform certificate.
    #[arg(long, value_name = "FILE")]
    pub platform_certificate_file: Option<String>,
    /// wechat: PEM file of the WeChat Pay public key.
    #[arg(long, value_name = "FILE")]
    pub wechatpay_public_key_file: Option<String>,
    /// wechat: PEM file of the /secapi/ client certificate.
    #[arg(long, value_name = "FILE")]
    pub client_certificate_file: Option<String>,
    /// wechat: PEM file of the client certificate's private key.
    #[arg(long, value_name = "FILE")]
    pub client_key_file: Option<String>,
    /// alipay: the open-platform app id.
    #[arg(long)]
    pub alipay_app_id: Option<String>,
    /// alipay: the seller's user id (2088…).
    #[arg(long)]
    pub seller_id: Option<String>,
    /// alipay: gateway URL (default https://openapi.alipay.com/gateway.do).
    #[arg(long)]
    pub gateway_url: Option<String>,
    /// alipay: PEM file of the app's RSA private key.
    #[arg(long, value_name = "FILE")]
    pub app_private_key_file: Option<String>,
    /// alipay: PEM file of Alipay's public key (public-key mode).
    #[arg(long, value_name = "FILE")]
    pub alipay_public_key_file: Option<String>,
    /// alipay: certificate mode's three PEM files.
    #[arg(long, value_name = "FILE")]
    pub app_public_cert_file: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub alipay_public_cert_file: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub alipay_root_cert_file: Option<String>,
    /// alipay: file holding the app_auth_token (service-provider mode).
    #[arg(long, value_name = "FILE")]
    pub app_auth_token_file: Option<String>,
    /// Remove a field (repeatable), e.g. --clear sub_mch_id.
    #[arg(long, value_name = "FIELD")]
    pub clear: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub master: MasterKeyArgs,
    #[command(flatten)]
    pub db: Database,
}

impl SetArgs {
    /// The fields as the API's PUT body would carry them.
    fn body(&self) -> Result<Map<String, Value>, Problem> {
        let mut body = Map::new();
        let values = [
            ("mch_id", &self.mch_id),
            ("appid", &self.appid),
            ("api_version", &self.api_version),
            ("merchant_serial_no", &self.merchant_serial_no),
            ("wechatpay_public_key_id", &self.wechatpay_public_key_id),
            ("sub_mch_id", &self.sub_mch_id),
            ("sub_appid", &self.sub_appid),
            ("api_base_url", &self.api_base_url),
            ("app_id", &self.alipay_app_id),
            ("seller_id", &self.seller_id),
            ("gateway_url", &self.gateway_url),
        ];
        for (name, value) in values {
            if let Some(v) = value {
                body.insert(name.into(), Value::String(v.clone()));
            }
        }
        let files = [
            ("api_v2_key", &self.api_v2_key_file),
            ("api_v3_key", &self.api_v3_key_file),
            ("merchant_private_key", &self.merchant_private_key_file),
            ("platform_certificate", &self.platform_certificate_file),
            ("wechatpay_public_key", &self.wechatpay_public_key_file),
            ("client_certificate", &self.client_certificate_file),
            ("client_key", &self.client_key_file),
            ("app_private_key", &self.app_private_key_file),
            ("alipay_public_key", &self.alipay_public_key_file),
            ("app_public_cert", &self.app_public_cert_file),
            ("alipay_public_cert", &self.alipay_public_cert_file),
            ("alipay_root_cert", &self.alipay_root_cert_file),
            ("app_auth_token", &self.app_auth_token_file),
        ];
        for (name, path) in files {
            if let Some(path) = path {
                let flag = format!("{}-file", name.replace('_', "-"));
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Problem::invalid(&flag, format!("Cannot read {path}: {e}")))?;
                // A key file's final newline is not part of the key.
                body.insert(name.into(), Value::String(text.trim().to_string()));
            }
        }
        for name in &self.clear {
            body.insert(name.clone(), Value::Null);
        }
        Ok(body)
    }
}

async fn open(db: &Database, master: &MasterKeyArgs) -> Result<Arc<Paygate>, Problem> {
    let keys = master.keys()?;
    let app =
        paygate::start_configured(&db.database, usize::from(db.pg_pool), Arc::new(SystemClock), Policy::default())
            .await?;
    app.set_master_keys(keys);
    Ok(app)
}

fn mode(name: &str) -> Mode {
    Mode::from_live(name == "live")
}

fn print_account(view: &paygate_core::accounts::AccountView, json: bool) {
    let object = view.to_json();
    if json {
        println!("{}", Value::Object(object));
    } else {
        for (k, v) in object {
            println!("{k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        }
    }
}

pub async fn run(cmd: ChannelAccountCommand) -> Result<(), Problem> {
    match cmd {
        ChannelAccountCommand::Set(args) => {
            let provider = Provider::parse(&args.target.provider)?;
            let patch = AccountPatch::from_json(provider, &args.body()?)?;
            let app = open(&args.db, &args.master).await?;
            let caller = app.caller_for(&args.target.app_id, mode(&args.target.mode)).await?;
            let view = app.set_channel_account(&caller, provider, patch).await?;
            print_account(&view, args.json);
        }
        ChannelAccountCommand::Show { target, json, db } => {
            let app = open(&db, &MasterKeyArgs::default()).await?;
            let caller = app.caller_for(&target.app_id, mode(&target.mode)).await?;
            print_account(&app.channel_account_view(&caller, Provider::parse(&target.provider)?).await?, json);
        }
        ChannelAccountCommand::List { app_id, mode: m, json, db } => {
            let app = open(&db, &MasterKeyArgs::default()).await?;
            let caller = app.caller_for(&app_id, mode(&m)).await?;
            let views = app.channel_account_views(&caller).await?;
            if json {
                println!("{}", Value::Array(views.iter().map(|v| Value::Object(v.to_json())).collect()));
            } else {
                for v in views {
                    println!("{}\t{}\t{}\tkey {}", v.summary.provider.as_str(), v.created, v.updated, v.key_id);
                }
            }
        }
        ChannelAccountCommand::Remove { target, db } => {
            let app = open(&db, &MasterKeyArgs::default()).await?;
            let caller = app.caller_for(&target.app_id, mode(&target.mode)).await?;
            app.remove_channel_account(&caller, Provider::parse(&target.provider)?).await?;
            tracing::info!("removed the {} account of {} ({})", target.provider, target.app_id, target.mode);
        }
        ChannelAccountCommand::Rekey { json, master, db } => {
            let app = open(&db, &master).await?;
            let pass = app.rekey_channel_accounts().await?;
            let failed: Vec<Value> =
                pass.failed.iter().map(|(item, p)| json!({"account": item, "error": p.message})).collect();
            let current = app.master_keys().current_id().unwrap_or_default().to_string();
            if json {
                println!("{}", json!({"key_id": current, "rekeyed": pass.done, "failed": failed}));
            } else {
                println!("{} accounts re-encrypted under master key '{current}'", pass.done);
                for (item, p) in &pass.failed {
                    println!("failed: {item}: {}", p.message);
                }
            }
            if !pass.failed.is_empty() {
                return Err(Problem::conflict(
                    "rekey_incomplete",
                    format!("{} accounts were not re-encrypted (listed above); run rekey again", pass.failed.len()),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    const KEY: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    #[test]
    fn master_keys_parse_and_never_show_in_debug() {
        let cli = Cli::try_parse_from(["paygate", "serve", "--master-keys", KEY]).unwrap();
        assert!(!format!("{cli:?}").contains("AQEB"), "Debug redacts the master keys");
        let Command::Serve(serve) = cli.command else { panic!("serve") };
        assert_eq!(serve.master.keys().unwrap().current_id(), Some("k1"));
        let both = ["paygate", "worker", "--master-keys", KEY, "--master-key-file", "/x"];
        assert!(Cli::try_parse_from(both).is_err(), "one source of keys at a time");
        let cli = Cli::try_parse_from(["paygate", "worker", "--master-keys", "k1:short"]).unwrap();
        let Command::Worker(worker) = cli.command else { panic!("worker") };
        assert_eq!(worker.master.keys().unwrap_err().param.as_deref(), Some("master_keys"));
    }

    #[test]
    fn set_takes_secrets_only_from_files() {
        let args = ["paygate", "channel-account", "set", "--app", "app_1", "--provider", "wechat", "--mch-id", "19"];
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::ChannelAccount(super::ChannelAccountCommand::Set(set)) = cli.command else { panic!("set") };
        assert_eq!(set.body().unwrap()["mch_id"], "19");
        let secret = ["paygate", "channel-account", "set", "--app", "a", "--provider", "wechat", "--api-v3-key", "x"];
        assert!(Cli::try_parse_from(secret).is_err());
        let bad = ["paygate", "channel-account", "show", "--app", "a", "--provider", "paypal"];
        assert!(Cli::try_parse_from(bad).is_err());
    }
}
