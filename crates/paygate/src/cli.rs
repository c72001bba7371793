//! The command line, declared once with clap: every option has its environment variable (shown
//! in `--help`), and the server's whole configuration is parsed here, once, at start — nothing
//! reads the environment later. [`ServeArgs::config`] turns it into the typed settings each
//! crate takes and validates them before anything is opened.

use clap::{Args, Parser, Subcommand, ValueEnum};
use paygate_domain::Problem;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "paygate",
    version,
    about = "paygate — a self-hosted payment order gateway (Ping++-compatible /v1, 知晓云 hserve, 酷点 cashier)",
    long_about = None,
    propagate_version = true,
    after_help = "Logs go to stderr; stdout carries only what a command prints (so `--json | jq` works)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log line format: human-readable text, or one JSON object per line.
    #[arg(long, env = "PAYGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Which log lines to keep: a level, or `target=level` pairs (e.g. `info` or `paygate_worker=debug,info`).
    #[arg(long, env = "PAYGATE_LOG", default_value = "info", global = true)]
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct Database {
    /// sqlite://PATH (embedded) or postgres://USER@HOST/DB[?sslmode=require].
    #[arg(long, env = "PAYGATE_DATABASE_URL", default_value = paygate::DEFAULT_DATABASE_URL)]
    pub database: String,
    /// PostgreSQL connections this process may hold.
    #[arg(long, env = "PAYGATE_PG_POOL", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub pg_pool: u16,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (and, unless --no-worker, the background worker).
    Serve(Box<ServeArgs>),
    /// Run the background worker alone (webhook deliveries, order expiry, late refunds, channel re-queries).
    Worker(WorkerOnly),
    /// Create or upgrade the database schema, then exit.
    Migrate(Database),
    /// Apps: create, list, keys, settings.
    #[command(subcommand)]
    App(AppCommand),
    /// Complete a test-mode charge as its payer would.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Webhook endpoints and the platform signing key.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Payment channel simulators for tests and offline development (`paygate sim wechat --help`, `… alipay --help`).
    #[command(subcommand)]
    Sim(crate::cli_sim::SimCommand),
    /// Channel accounts (WeChat Pay, Alipay credentials; secrets encrypted under the master keys).
    #[command(subcommand)]
    ChannelAccount(crate::cli_accounts::ChannelAccountCommand),
    /// Reconciliation (对账) of a channel's daily bill against paygate's books.
    #[command(subcommand)]
    Reconcile(crate::cli_reconcile::ReconcileCommand),
    /// Merchant console users (`/console`).
    #[command(subcommand)]
    User(crate::cli_console::UserCommand),
    /// Print a shell completion script: `paygate completions bash > /etc/bash_completion.d/paygate`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PAYGATE_LISTEN", default_value = paygate::DEFAULT_LISTEN)]
    pub listen: String,
    #[command(flatten)]
    pub db: Database,
    /// Serve only; run `paygate worker` elsewhere.
    #[arg(long)]
    pub no_worker: bool,
    /// Open connections at most; more are answered 503 and closed.
    #[arg(long, env = "PAYGATE_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Seconds a request's head (request line and headers) may take to arrive.
    #[arg(long, env = "PAYGATE_HEADER_READ_TIMEOUT", default_value_t = 10, value_parser = seconds)]
    pub header_read_timeout: u64,
    /// Seconds its body may take after that (then 408).
    #[arg(long, env = "PAYGATE_BODY_READ_TIMEOUT", default_value_t = 30, value_parser = seconds)]
    pub body_read_timeout: u64,
    /// Seconds a keep-alive connection may stay idle.
    #[arg(long, env = "PAYGATE_IDLE_TIMEOUT", default_value_t = 60, value_parser = seconds)]
    pub idle_timeout: u64,
    /// Seconds in-flight requests get on SIGTERM/SIGINT; a second signal exits at once.
    #[arg(long, env = "PAYGATE_SHUTDOWN_GRACE", default_value_t = 10, value_parser = seconds)]
    pub shutdown_grace: u64,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub master: crate::cli_accounts::MasterKeyArgs,
}

#[derive(Debug, Args)]
pub struct WorkerOnly {
    #[command(flatten)]
    pub db: Database,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub master: crate::cli_accounts::MasterKeyArgs,
}

#[derive(Debug, Args, Clone)]
pub struct WorkerArgs {
    /// Seconds a claimed delivery belongs to this worker; must outlast the attempt timeout by more
    /// than a second.
    #[arg(long, env = "PAYGATE_WORKER_LEASE_SECONDS", default_value_t = 60)]
    pub worker_lease_seconds: i64,
    /// Milliseconds between claims when there was nothing to do.
    #[arg(long, env = "PAYGATE_WORKER_POLL_MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub worker_poll_ms: u64,
    /// Milliseconds one delivery attempt may take, DNS included.
    #[arg(long, env = "PAYGATE_WORKER_TIMEOUT_MS", default_value_t = 10_000)]
    pub worker_timeout_ms: u64,
    /// Deliveries in flight at most, all endpoints together.
    #[arg(long, env = "PAYGATE_WORKER_MAX_IN_FLIGHT", default_value_t = paygate_worker::DEFAULT_MAX_IN_FLIGHT)]
    pub worker_max_in_flight: usize,
    /// Deliveries in flight at most to one endpoint (across nodes).
    #[arg(long, env = "PAYGATE_WORKER_PER_ENDPOINT", default_value_t = paygate_worker::DEFAULT_PER_ENDPOINT)]
    pub worker_per_endpoint: i64,
    /// Days to keep events with their deliveries and attempts (unset: forever). Only events whose
    /// deliveries are all finished go; PostgreSQL drops whole months once they are past it.
    #[arg(long, env = "PAYGATE_EVENT_RETENTION_DAYS", value_parser = clap::value_parser!(i64).range(1..=36_500))]
    pub event_retention_days: Option<i64>,
    /// Beijing time of day (HH:MM) from which yesterday's WeChat Pay / Alipay bills are downloaded and
    /// reconciled for every app with a channel account; `off` disables the daily job.
    #[arg(long, env = "PAYGATE_RECONCILE_AT", default_value = "10:00", value_parser = parse_reconcile_at)]
    pub reconcile_at: ReconcileAt,
}

/// `--reconcile-at`: seconds after Beijing midnight, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileAt(pub Option<i64>);

fn parse_reconcile_at(value: &str) -> Result<ReconcileAt, String> {
    if value == "off" {
        return Ok(ReconcileAt(None));
    }
    let bad = || format!("'{value}' is not a time of day as HH:MM (00:00 to 23:59) or off");
    let (h, m) = value.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) || value.len() != 5 {
        return Err(bad());
    }
    Ok(ReconcileAt(Some(h * 3600 + m * 60)))
}

#[derive(Debug, Args, Clone)]
pub struct PolicyArgs {
    /// Allow webhook URLs on loopback/private/link-local addresses (local development only: it
    /// lets merchants make paygate call services only this host can reach).
    #[arg(long, env = "PAYGATE_WEBHOOK_ALLOW_PRIVATE", value_parser = clap::builder::BoolishValueParser::new(),
          default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub webhook_allow_private: bool,
    /// Allow channel accounts' api_base_url on loopback/private/link-local addresses (the simulator in
    /// development; never in production: the URL is the merchant's).
    #[arg(long, env = "PAYGATE_CHANNEL_ALLOW_PRIVATE", value_parser = clap::builder::BoolishValueParser::new(),
          default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub channel_allow_private: bool,
    /// PEM file of extra root certificates trusted for channel endpoints (WeChat Pay, Alipay; also roots of
    /// Alipay's certificate mode), beside the public roots: a simulator's or a private gateway's own CA. Read
    /// and checked at start.
    #[arg(long, env = "PAYGATE_CHANNEL_CA_FILE", value_parser = read_channel_ca_file)]
    pub channel_ca_file: Option<String>,
}

/// `--channel-ca-file`: the file's PEM text, once it holds at least one certificate.
fn read_channel_ca_file(path: &str) -> Result<String, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    paygate_channels::net::certificates_pem(&pem, path)?;
    Ok(pem)
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app; prints its secret keys once (they are stored only as hashes).
    Create {
        /// What the app is called (up to 64 characters).
        #[arg(long)]
        name: String,
        /// PEM of the merchant's RSA public key: requests must then be signed (Ping++ style).
        #[arg(long)]
        public_key_file: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    /// List every app.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    /// Issue a new secret key; the old one keeps working for --grace-hours, then stops.
    RollKey {
        /// The app's id (app_…).
        app_id: String,
        /// The live-mode key (default: the test-mode key).
        #[arg(long)]
        live: bool,
        /// Hours the old key keeps working, 0 to 720 (0 = stops at once; other nodes may trust a
        /// key they cached for up to 30 s more).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(0..=720))]
        grace_hours: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    /// Require (or with --none, stop requiring) RSA-signed requests.
    SetPublicKey {
        /// The app's id (app_…).
        app_id: String,
        /// PEM of the merchant's RSA public key.
        #[arg(long, required_unless_present = "none", conflicts_with = "none")]
        public_key_file: Option<String>,
        /// Stop requiring signed requests.
        #[arg(long)]
        none: bool,
        #[command(flatten)]
        db: Database,
    },
    /// What happens to money paid after its order closed: refund it, or hold it for review.
    SetLatePayment {
        /// The app's id (app_…).
        app_id: String,
        #[arg(value_parser = ["refund", "hold"])]
        policy: String,
        #[command(flatten)]
        db: Database,
    },
    /// Profit-sharing cap in percent of what was paid (default 30).
    SetMaxShare {
        /// The app's id (app_…).
        app_id: String,
        #[arg(value_parser = clap::value_parser!(i64).range(0..=100))]
        percent: i64,
        #[command(flatten)]
        db: Database,
    },
    /// The app's 知晓云 client ids (test and live).
    HserveClients {
        /// The app's id (app_…).
        app_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    /// The cashier and SaaS-query signing credentials.
    Credentials {
        /// The app's id (app_…).
        app_id: String,
        #[command(flatten)]
        db: Database,
    },
    /// A channel family's fee rate in basis points (0..=10000).
    SetFeeRate {
        /// The app's id (app_…).
        app_id: String,
        #[arg(value_parser = ["wechat", "alipay", "balance", "other"])]
        family: String,
        #[arg(value_parser = clap::value_parser!(i64).range(0..=10_000))]
        basis_points: i64,
        /// The live-mode rate (default: test mode).
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Pay (or with --fail, decline) a test-mode charge of any app.
    Pay {
        /// The charge id (or its channel or transaction number).
        charge: String,
        /// Decline instead of paying.
        #[arg(long)]
        fail: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Debug, Args)]
pub struct AppScope {
    /// The app's id (app_…).
    #[arg(long = "app")]
    pub app_id: String,
    /// Live mode (default: test mode).
    #[arg(long)]
    pub live: bool,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Register an endpoint; its signing secret is shown once.
    Create {
        #[command(flatten)]
        scope: AppScope,
        /// Where events are POSTed (http or https; public addresses only unless allowed).
        #[arg(long)]
        url: String,
        /// Comma-separated event types (default: every type).
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        db: Database,
    },
    List {
        #[command(flatten)]
        scope: AppScope,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    Delete {
        #[command(flatten)]
        scope: AppScope,
        /// The endpoint's id (we_…).
        endpoint_id: String,
        #[command(flatten)]
        db: Database,
    },
    /// Stop sending events to an endpoint (kept; its queued deliveries are marked failed and can be resent).
    Disable {
        #[command(flatten)]
        scope: AppScope,
        /// The endpoint's id (we_…).
        endpoint_id: String,
        #[command(flatten)]
        db: Database,
    },
    /// Send events to a disabled endpoint again (new events; resend the ones it missed).
    Enable {
        #[command(flatten)]
        scope: AppScope,
        /// The endpoint's id (we_…).
        endpoint_id: String,
        #[command(flatten)]
        db: Database,
    },
    /// paygate's platform public key (PEM): what receivers verify `x-pingplusplus-signature` with.
    PublicKey {
        /// Print JSON (`{"pem": …}`) instead of the PEM text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Queue an event again for every endpoint subscribed to it now.
    Resend {
        #[command(flatten)]
        scope: AppScope,
        /// The event's id (evt_…).
        event_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
}

fn seconds(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("must be a whole number of seconds greater than 0, got '{text}'")),
    }
}

impl WorkerArgs {
    /// The worker's settings, validated (a lease that does not outlast an attempt is refused).
    pub fn settings(&self) -> Result<paygate_worker::Settings, Problem> {
        let settings = paygate_worker::Settings {
            poll: Duration::from_millis(self.worker_poll_ms),
            max_in_flight: self.worker_max_in_flight,
            per_endpoint: self.worker_per_endpoint,
            lease_seconds: self.worker_lease_seconds,
            timeout: Duration::from_millis(self.worker_timeout_ms),
            event_retention_days: self.event_retention_days,
            reconcile_at: self.reconcile_at.0,
            ..paygate_worker::Settings::default()
        };
        settings.validate()?;
        Ok(settings)
    }
}

impl PolicyArgs {
    pub fn policy(&self) -> paygate_core::Policy {
        paygate_core::Policy {
            webhook_allow_private: self.webhook_allow_private,
            channel_allow_private: self.channel_allow_private,
            // The same variable the HTTP face builds pay-page links from.
            public_url: std::env::var("PAYGATE_PUBLIC_URL").ok().filter(|u| !u.trim().is_empty()),
            channel_ca_pem: self.channel_ca_file.clone(),
        }
    }
}

impl ServeArgs {
    pub fn limits(&self) -> paygate_http::Limits {
        paygate_http::Limits {
            max_connections: self.max_connections as usize,
            header_read_timeout: Duration::from_secs(self.header_read_timeout),
            body_read_timeout: Duration::from_secs(self.body_read_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            ..paygate_http::Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn reconcile_at_is_a_time_of_day_or_off() {
        assert_eq!(parse_reconcile_at("10:00"), Ok(ReconcileAt(Some(36_000))));
        assert_eq!(parse_reconcile_at("23:59"), Ok(ReconcileAt(Some(86_340))));
        assert_eq!(parse_reconcile_at("off"), Ok(ReconcileAt(None)));
        for bad in ["24:00", "9:00", "10:0", "10:60", "-1:00", "ten", ""] {
            assert!(parse_reconcile_at(bad).is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from(["paygate", "worker", "--reconcile-at", "off"]).unwrap();
        let Command::Worker(w) = cli.command else { panic!("worker") };
        assert_eq!(w.worker.settings().unwrap().reconcile_at, None);
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_have_defaults_and_validate() {
        let cli = Cli::try_parse_from(["paygate", "serve", "--worker-lease-seconds", "5"]).unwrap();
        let Command::Serve(serve) = cli.command else { panic!("serve") };
        assert_eq!(serve.listen, paygate::DEFAULT_LISTEN);
        assert!(serve.worker.settings().is_err(), "a 5 s lease does not outlast a 10 s attempt");
        assert!(Cli::try_parse_from(["paygate", "serve", "--idle-timeout", "0"]).is_err());
        let cli = Cli::try_parse_from(["paygate", "worker", "--webhook-allow-private"]).unwrap();
        let Command::Worker(w) = cli.command else { panic!("worker") };
        assert!(w.policy.policy().webhook_allow_private);
    }
}
