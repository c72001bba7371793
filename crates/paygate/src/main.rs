//! The `paygate` command line. Logs and errors go to stderr; stdout carries only what a command
//! is asked to print (so `paygate app create --json | jq` works).

use paygate::{redact, DEFAULT_DATABASE_URL, DEFAULT_LISTEN};
use paygate_core::sandbox::SandboxResult;
use paygate_core::SystemClock;
use paygate_domain::Problem;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "paygate — a self-hosted payment order gateway (Ping++-compatible /v1 API)

USAGE:
  paygate serve [--listen ADDR] [--database URL] [--no-worker] [LIMITS]
  paygate worker [--database URL]
  paygate migrate [--database URL]
  paygate app create --name NAME [--public-key-file PEM] [--json] [--database URL]
  paygate app set-public-key APP_ID (--public-key-file PEM | --none) [--database URL]
  paygate app set-late-payment APP_ID (refund | hold) [--database URL]
  paygate app set-max-share APP_ID PERCENT [--database URL]      (profit sharing cap, default 30)
  paygate app hserve-clients APP_ID [--database URL]             (知晓云 client ids, test and live)
  paygate app credentials APP_ID [--database URL]                (cashier and SaaS-query signing credentials)
  paygate app set-fee-rate APP_ID (wechat|alipay|balance|other) BASIS_POINTS [--live] [--database URL]
  paygate sandbox pay CH_ID [--fail] [--database URL]
  paygate webhook create --app APP_ID --url URL [--events TYPE,TYPE] [--live] [--json] [--database URL]
  paygate webhook list --app APP_ID [--live] [--database URL]
  paygate webhook delete --app APP_ID WE_ID [--live] [--database URL]
  paygate webhook public-key [--database URL]
  paygate events resend --app APP_ID EVT_ID [--live] [--database URL]

Defaults: --listen 127.0.0.1:8080 (env PAYGATE_LISTEN),
          --database sqlite://paygate.db (env PAYGATE_DATABASE_URL; or postgres://USER@HOST/DB)

LIMITS (serve; seconds unless said otherwise):
  --max-connections N        open connections at most, more get 503   (env PAYGATE_MAX_CONNECTIONS, 1024)
  --header-read-timeout S    a request's head must arrive within S    (env PAYGATE_HEADER_READ_TIMEOUT, 10)
  --body-read-timeout S      its body within S more (408 after)       (env PAYGATE_BODY_READ_TIMEOUT, 30)
  --idle-timeout S           keep-alive connections idle this long    (env PAYGATE_IDLE_TIMEOUT, 60)
  --shutdown-grace S         on SIGTERM/SIGINT, in-flight work gets S (env PAYGATE_SHUTDOWN_GRACE, 10);
                             a second signal exits at once";

struct Args {
    positional: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut positional = Vec::new();
        let mut options = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let (name, value) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None if matches!(name, "json" | "fail" | "none" | "help" | "version" | "live" | "no-worker") => {
                        (name.to_string(), None)
                    }
                    None => (name.to_string(), Some(it.next().ok_or_else(|| format!("--{name} needs a value"))?)),
                };
                options.push((name, value));
            } else {
                positional.push(arg);
            }
        }
        Ok(Args { positional, options })
    }

    fn opt(&self, name: &str) -> Option<String> {
        self.options.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.clone())
    }

    fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    fn database(&self) -> String {
        self.opt("database")
            .or_else(|| std::env::var("PAYGATE_DATABASE_URL").ok())
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into())
    }

    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self.options.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((n, _)) => Err(format!("unknown option --{n}")),
            None => Ok(()),
        }
    }
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if args.flag("help") || args.positional.is_empty() {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.flag("version") {
        println!("paygate {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&Problem::internal(e)),
    };
    let command: Vec<&str> = args.positional.iter().map(String::as_str).collect();
    let result = runtime.block_on(async {
        match command.as_slice() {
            ["serve"] => serve(&args).await,
            ["worker"] => worker(&args).await,
            ["app", "set-late-payment", app_id, policy] => set_late_payment(&args, app_id, policy).await,
            ["app", "set-max-share", app_id, percent] => set_max_share(&args, app_id, percent).await,
            ["app", "hserve-clients", app_id] => hserve_clients(&args, app_id).await,
            ["app", "credentials", app_id] => credentials(&args, app_id).await,
            ["app", "set-fee-rate", app_id, family, bp] => set_fee_rate(&args, app_id, family, bp).await,
            ["webhook", "create"] => webhook_create(&args).await,
            ["webhook", "list"] => webhook_list(&args).await,
            ["webhook", "delete", id] => webhook_delete(&args, id).await,
            ["webhook", "public-key"] => webhook_public_key(&args).await,
            ["events", "resend", id] => events_resend(&args, id).await,
            ["migrate"] => migrate(&args).await,
            ["app", "create"] => app_create(&args).await,
            ["app", "set-public-key", app_id] => set_public_key(&args, app_id).await,
            ["sandbox", "pay", charge] => sandbox_pay(&args, charge).await,
            _ => Err(Err(format!("unknown command '{}'", command.join(" ")))),
        }
    });
    // Blocking work still running (a webhook send past its deadline) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Ok(problem)) => fail(&problem),
        Err(Err(usage)) => usage_error(&usage),
    }
}

/// `Err(Ok(problem))`: the command failed; `Err(Err(text))`: it was called wrongly.
type CmdResult = Result<(), Result<Problem, String>>;

fn fail(problem: &Problem) -> ExitCode {
    eprintln!("paygate: {}", problem.message);
    ExitCode::FAILURE
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("paygate: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

async fn open(args: &Args) -> Result<Arc<paygate_core::Paygate>, Result<Problem, String>> {
    paygate::start_with(&args.database(), Arc::new(SystemClock), paygate_core::Policy::from_env()).await.map_err(Ok)
}

/// `--NAME` or env `PAYGATE_NAME` as a positive whole number, or `default`.
fn limit(args: &Args, name: &str, default: u64) -> Result<u64, Result<Problem, String>> {
    let env = format!("PAYGATE_{}", name.to_uppercase().replace('-', "_"));
    match args.opt(name).or_else(|| std::env::var(&env).ok()) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Err(format!("--{name} (env {env}) must be a whole number greater than 0, got '{v}'"))),
    }
}

fn limits(args: &Args) -> Result<paygate_http::Limits, Result<Problem, String>> {
    use std::time::Duration;
    let d = paygate_http::Limits::default();
    let secs = |name: &str, default: Duration| limit(args, name, default.as_secs()).map(Duration::from_secs);
    Ok(paygate_http::Limits {
        max_connections: usize::try_from(limit(args, "max-connections", d.max_connections as u64)?)
            .unwrap_or(usize::MAX),
        header_read_timeout: secs("header-read-timeout", d.header_read_timeout)?,
        body_read_timeout: secs("body-read-timeout", d.body_read_timeout)?,
        idle_timeout: secs("idle-timeout", d.idle_timeout)?,
        write_stall_timeout: d.write_stall_timeout,
        shutdown_grace: secs("shutdown-grace", d.shutdown_grace)?,
    })
}

async fn serve(args: &Args) -> CmdResult {
    let limit_names = ["max-connections", "header-read-timeout", "body-read-timeout", "idle-timeout", "shutdown-grace"];
    let known: Vec<&str> = ["listen", "database", "no-worker"].into_iter().chain(limit_names).collect();
    args.check_known(&known).map_err(Err)?;
    let limits = limits(args)?;
    let listen =
        args.opt("listen").or_else(|| std::env::var("PAYGATE_LISTEN").ok()).unwrap_or_else(|| DEFAULT_LISTEN.into());
    let worker = (!args.flag("no-worker")).then(paygate_worker::Settings::from_env);
    // Everything that can be wrong with the configuration or the port fails before the
    // database is touched: a failed start must not create (and print the keys of) the first app.
    if let Some(settings) = &worker {
        settings.validate().map_err(Ok)?;
    }
    let listener = paygate::bind(&listen).await.map_err(Ok)?;
    let app = open(args).await?;
    if app.store.count_apps().await.map_err(Ok)? == 0 {
        let keys = app.create_app("default", None).await.map_err(Ok)?;
        println!("Created the first app {} ({}).", keys.app.id, keys.app.name);
        println!("  test secret key: {}", keys.test_secret_key);
        println!("  live secret key: {}", keys.live_secret_key);
        println!("  知晓云 client id (test): {}", client_id(&keys, paygate_domain::Mode::Test));
        println!("Keep these keys: they are stored only as hashes and cannot be shown again.");
    }
    let grace = limits.shutdown_grace;
    let running = paygate::serve_on(listener, app.clone(), worker, limits).map_err(Ok)?;
    eprintln!(
        "paygate: serving on http://{} with {} ({})",
        running.addr,
        app.store.backend(),
        redact(&args.database())
    );
    wait_for_signal().await;
    eprintln!("paygate: shutting down: in-flight requests get {}s (a second signal exits at once)", grace.as_secs());
    exit_on_second_signal();
    running.stop().await;
    Ok(())
}

/// After the first SIGINT/SIGTERM started a graceful shutdown, a second one ends the process
/// at once (an operator pressing Ctrl-C twice means it).
fn exit_on_second_signal() {
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("paygate: second signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

async fn migrate(args: &Args) -> CmdResult {
    args.check_known(&["database"]).map_err(Err)?;
    let app = open(args).await?;
    eprintln!("paygate: {} database is migrated", app.store.backend());
    Ok(())
}

fn read_pem(args: &Args) -> Result<Option<String>, Result<Problem, String>> {
    match args.opt("public-key-file") {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| Ok(Problem::invalid("public-key-file", format!("Cannot read {path}: {e}")))),
    }
}

async fn app_create(args: &Args) -> CmdResult {
    args.check_known(&["name", "json", "database", "public-key-file"]).map_err(Err)?;
    let name = args.opt("name").ok_or_else(|| Err("app create needs --name NAME".to_string()))?;
    let pem = read_pem(args)?;
    let app = open(args).await?;
    let keys = app.create_app(&name, pem).await.map_err(Ok)?;
    if args.flag("json") {
        let out = serde_json::json!({
            "id": keys.app.id, "name": keys.app.name, "created": keys.app.created,
            "test_secret_key": keys.test_secret_key, "live_secret_key": keys.live_secret_key,
            "hserve_test_client_id": client_id(&keys, paygate_domain::Mode::Test),
            "hserve_live_client_id": client_id(&keys, paygate_domain::Mode::Live),
            "credentials": keys.credentials.iter().map(credential_json).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        println!(
            "app:             {}\ntest secret key: {}\nlive secret key: {}",
            keys.app.id, keys.test_secret_key, keys.live_secret_key
        );
        println!(
            "知晓云 client id: {} (test), {} (live)",
            client_id(&keys, paygate_domain::Mode::Test),
            client_id(&keys, paygate_domain::Mode::Live)
        );
    }
    Ok(())
}

fn client_id(keys: &paygate_core::NewAppKeys, mode: paygate_domain::Mode) -> String {
    keys.hserve_clients.iter().find(|(_, m)| *m == mode).map(|(id, _)| id.clone()).unwrap_or_default()
}

fn credential_json(c: &paygate_store::FaceCredential) -> serde_json::Value {
    serde_json::json!({
        "face": c.face, "livemode": c.scope.mode.is_live(), "public_id": c.public_id, "secret": c.secret, "token": c.token,
    })
}

async fn credentials(args: &Args, app_id: &str) -> CmdResult {
    args.check_known(&["database"]).map_err(Err)?;
    let app = open(args).await?;
    for c in app.store.face_credentials(app_id).await.map_err(Ok)? {
        println!("{}", credential_json(&c));
    }
    Ok(())
}

async fn set_fee_rate(args: &Args, app_id: &str, family: &str, bp: &str) -> CmdResult {
    args.check_known(&["database", "live"]).map_err(Err)?;
    let bp: i64 = bp.parse().map_err(|_| Err(format!("BASIS_POINTS must be an integer 0..=10000, got '{bp}'")))?;
    let app = open(args).await?;
    let mode = if args.flag("live") { paygate_domain::Mode::Live } else { paygate_domain::Mode::Test };
    let caller = app.caller_for(app_id, mode).await.map_err(Ok)?;
    app.set_fee_rate(&caller, family, bp).await.map_err(Ok)?;
    eprintln!("paygate: app {app_id} pays {bp} basis points on {family} ({})", mode.name());
    Ok(())
}

async fn set_max_share(args: &Args, app_id: &str, percent: &str) -> CmdResult {
    args.check_known(&["database"]).map_err(Err)?;
    let percent: i64 =
        percent.parse().map_err(|_| Err(format!("PERCENT must be an integer 0..=100, got '{percent}'")))?;
    let app = open(args).await?;
    app.set_app_max_share(app_id, percent).await.map_err(Ok)?;
    eprintln!("paygate: app {app_id} may share at most {percent}% of what was paid");
    Ok(())
}

async fn hserve_clients(args: &Args, app_id: &str) -> CmdResult {
    args.check_known(&["database"]).map_err(Err)?;
    let app = open(args).await?;
    for (id, mode) in app.store.hserve_clients(app_id).await.map_err(Ok)? {
        println!("{id} {}", mode.name());
    }
    Ok(())
}

async fn set_public_key(args: &Args, app_id: &str) -> CmdResult {
    args.check_known(&["public-key-file", "none", "database"]).map_err(Err)?;
    let pem = read_pem(args)?;
    if pem.is_none() && !args.flag("none") {
        return Err(Err("set-public-key needs --public-key-file PEM (or --none to stop requiring signatures)".into()));
    }
    let app = open(args).await?;
    app.set_app_public_key(app_id, pem.as_deref()).await.map_err(Ok)?;
    eprintln!(
        "paygate: app {app_id} {}",
        if pem.is_some() { "now requires signed requests" } else { "no longer requires signed requests" }
    );
    Ok(())
}

async fn sandbox_pay(args: &Args, charge: &str) -> CmdResult {
    args.check_known(&["fail", "database"]).map_err(Err)?;
    let result = if args.flag("fail") { SandboxResult::Fail } else { SandboxResult::Success };
    let app = open(args).await?;
    let (charge, order) = app.sandbox_pay_any(charge, result).await.map_err(Ok)?;
    println!("charge {} {}; order {} {}", charge.id, charge.status.as_str(), order.id, order.status.as_str());
    Ok(())
}

async fn worker(args: &Args) -> CmdResult {
    args.check_known(&["database"]).map_err(Err)?;
    let app = open(args).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = paygate_worker::Worker::try_new(app.clone(), paygate_worker::Settings::from_env()).map_err(Ok)?;
    let task = tokio::spawn(worker.run(stopped));
    eprintln!("paygate: worker running on {} ({})", app.store.backend(), redact(&args.database()));
    wait_for_signal().await;
    eprintln!("paygate: worker finishing its current sweep (a second signal exits at once)");
    exit_on_second_signal();
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}

async fn set_late_payment(args: &Args, app_id: &str, policy: &str) -> CmdResult {
    args.check_known(&["database"]).map_err(Err)?;
    let policy = paygate_domain::LatePayment::parse(policy)
        .ok_or_else(|| Err(format!("late payment policy must be 'refund' or 'hold', got '{policy}'")))?;
    let app = open(args).await?;
    app.set_app_late_payment(app_id, policy).await.map_err(Ok)?;
    eprintln!("paygate: app {app_id} now handles late payments with '{}'", policy.as_str());
    Ok(())
}

async fn caller(args: &Args, app: &paygate_core::Paygate) -> Result<paygate_core::Caller, Result<Problem, String>> {
    let app_id = args.opt("app").ok_or_else(|| Err("this command needs --app APP_ID".to_string()))?;
    let mode = paygate_domain::Mode::from_live(args.flag("live"));
    app.caller_for(&app_id, mode).await.map_err(Ok)
}

async fn webhook_create(args: &Args) -> CmdResult {
    args.check_known(&["app", "url", "events", "live", "json", "database"]).map_err(Err)?;
    let url = args.opt("url").ok_or_else(|| Err("webhook create needs --url URL".to_string()))?;
    let types =
        args.opt("events").map(|e| e.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect());
    let app = open(args).await?;
    let caller = caller(args, &app).await?;
    let (endpoint, secret) = app.create_endpoint(&caller, &url, types).await.map_err(Ok)?;
    if args.flag("json") {
        println!(
            "{}",
            serde_json::json!({"id": endpoint.id, "url": endpoint.url, "livemode": endpoint.livemode, "events": endpoint.types, "secret": secret})
        );
    } else {
        println!(
            "endpoint: {}\nurl:      {}\nsecret:   {secret}\n(the secret is shown only now)",
            endpoint.id, endpoint.url
        );
    }
    Ok(())
}

async fn webhook_list(args: &Args) -> CmdResult {
    args.check_known(&["app", "live", "database"]).map_err(Err)?;
    let app = open(args).await?;
    let caller = caller(args, &app).await?;
    for e in app.endpoints(&caller).await.map_err(Ok)? {
        println!("{}\t{}\t{}", e.id, e.url, e.types.map(|t| t.join(",")).unwrap_or_else(|| "*".into()));
    }
    Ok(())
}

async fn webhook_delete(args: &Args, id: &str) -> CmdResult {
    args.check_known(&["app", "live", "database"]).map_err(Err)?;
    let app = open(args).await?;
    let caller = caller(args, &app).await?;
    app.delete_endpoint(&caller, id).await.map_err(Ok)?;
    eprintln!("paygate: deleted {id}");
    Ok(())
}

async fn webhook_public_key(args: &Args) -> CmdResult {
    args.check_known(&["database"]).map_err(Err)?;
    let app = open(args).await?;
    print!("{}", app.platform_public_key_pem().await.map_err(Ok)?);
    Ok(())
}

async fn events_resend(args: &Args, id: &str) -> CmdResult {
    args.check_known(&["app", "live", "database"]).map_err(Err)?;
    let app = open(args).await?;
    let caller = caller(args, &app).await?;
    let queued = app.resend_event(&caller, id).await.map_err(Ok)?;
    println!("{id}: {queued} deliveries queued");
    Ok(())
}
