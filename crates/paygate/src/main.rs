//! The `paygate` command line (declared in `cli.rs`). Logs and errors go to stderr; stdout
//! carries only what a command is asked to print (so `paygate app create --json | jq` works).

mod cli;
mod cli_accounts;
mod cli_console;
mod cli_reconcile;
mod cli_sim;

use clap::{CommandFactory, Parser};
use cli::{AppCommand, Cli, Command, Database, EventsCommand, LogFormat, SandboxCommand, WebhookCommand};
use paygate::redact;
use paygate_core::sandbox::SandboxResult;
use paygate_core::{Paygate, Policy, SystemClock};
use paygate_domain::{Mode, Problem};
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.log_format, &cli.log.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&Problem::internal(e)),
    };
    let result = runtime.block_on(run(cli.command));
    // Blocking work still running (a webhook send past its deadline) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => fail(&problem),
    }
}

/// Text lines (or JSON objects with `--log-format json`) on stderr, filtered by `--log`.
// The one message that cannot go through the logger: the logger's own configuration is bad.
#[allow(clippy::print_stderr)]
fn init_logging(format: LogFormat, filter: &str) {
    // `Targets` (`info`, `paygate_worker=debug,info`) rather than `EnvFilter`: the same syntax
    // operators use, without the regex engine EnvFilter compiles in.
    let filter: tracing_subscriber::filter::Targets = filter.parse().unwrap_or_else(|e| {
        eprintln!("paygate: --log '{filter}' is not a valid filter ({e}); using 'info'");
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
    });
    // Colours only for a person at a terminal, never into a file or a log collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    use tracing_subscriber::prelude::*;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    // The filter is global, not per layer: with one output there is nothing to filter per layer,
    // and a per-layer filter looks each request's span up again on every enter, exit and record.
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt.with_target(false)).init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true).with_current_span(true)).init(),
    }
}

fn fail(problem: &Problem) -> ExitCode {
    tracing::error!(code = problem.code, "{}", problem.message);
    ExitCode::FAILURE
}

async fn open(db: &Database, policy: Policy) -> Result<Arc<Paygate>, Problem> {
    paygate::start_configured(&db.database, usize::from(db.pg_pool), Arc::new(SystemClock), policy).await
}

async fn open_default(db: &Database) -> Result<Arc<Paygate>, Problem> {
    open(db, Policy::default()).await
}

fn mode(live: bool) -> Mode {
    Mode::from_live(live)
}

async fn run(command: Command) -> Result<(), Problem> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Worker(args) => worker(args).await,
        Command::Migrate(db) => {
            let app = open_default(&db).await?;
            tracing::info!("{} database is migrated", app.store.backend());
            Ok(())
        }
        Command::App(cmd) => app_command(cmd).await,
        Command::Sandbox(SandboxCommand::Pay { charge, fail, json, db }) => {
            let result = if fail { SandboxResult::Fail } else { SandboxResult::Success };
            let (charge, order) = open_default(&db).await?.sandbox_pay_any(&charge, result).await?;
            if json {
                println!(
                    "{}",
                    json!({"charge": charge.id, "charge_status": charge.status.as_str(),
                    "order": order.id, "order_status": order.status.as_str()})
                );
            } else {
                println!(
                    "charge {} {}; order {} {}",
                    charge.id,
                    charge.status.as_str(),
                    order.id,
                    order.status.as_str()
                );
            }
            Ok(())
        }
        Command::Webhook(cmd) => webhook_command(cmd).await,
        Command::Events(EventsCommand::Resend { scope, event_id, json, db }) => {
            let app = open_default(&db).await?;
            let caller = app.caller_for(&scope.app_id, mode(scope.live)).await?;
            let queued = app.resend_event(&caller, &event_id).await?;
            if json {
                println!("{}", json!({"event": event_id, "deliveries_queued": queued}));
            } else {
                println!("{event_id}: {queued} deliveries queued");
            }
            Ok(())
        }
        Command::Sim(cmd) => cli_sim::run(cmd, wait_for_signal()).await,
        Command::ChannelAccount(cmd) => cli_accounts::run(cmd).await,
        Command::Reconcile(cmd) => cli_reconcile::run(cmd).await,
        Command::User(cmd) => cli_console::run(cmd).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "paygate", &mut std::io::stdout());
            Ok(())
        }
    }
}

async fn serve(args: cli::ServeArgs) -> Result<(), Problem> {
    // Everything that can be wrong with the configuration or the port fails before the database
    // is touched: a failed start must not create (and print the keys of) the first app.
    let worker = if args.no_worker { None } else { Some(args.worker.settings()?) };
    let limits = args.limits();
    let master_keys = args.master.keys()?;
    let listener = paygate::bind(&args.listen).await?;
    let app = open(&args.db, args.policy.policy()).await?;
    app.set_master_keys(master_keys);
    if app.store.count_apps().await? == 0 {
        let keys = app.create_app("default", None).await?;
        println!("Created the first app {} ({}).", keys.app.id, keys.app.name);
        println!("  test secret key: {}", keys.test_secret_key);
        println!("  live secret key: {}", keys.live_secret_key);
        println!("  知晓云 client id (test): {}", client_id(&keys, Mode::Test));
        println!("Keep these keys: they are stored only as hashes and cannot be shown again.");
    }
    let grace = limits.shutdown_grace;
    let running = paygate::serve_on(listener, app.clone(), worker, limits)?;
    tracing::info!(
        addr = %running.addr, backend = app.store.backend(), database = %redact(&args.db.database),
        "serving on http://{}", running.addr
    );
    wait_for_signal().await;
    tracing::info!("shutting down: in-flight requests get {}s (a second signal exits at once)", grace.as_secs());
    exit_on_second_signal();
    running.stop().await;
    Ok(())
}

async fn worker(args: cli::WorkerOnly) -> Result<(), Problem> {
    let settings = args.worker.settings()?;
    let master_keys = args.master.keys()?;
    let app = open(&args.db, args.policy.policy()).await?;
    app.set_master_keys(master_keys);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(paygate_worker::Worker::try_new(app.clone(), settings)?.run(stopped));
    tracing::info!(backend = app.store.backend(), database = %redact(&args.db.database), "worker running");
    wait_for_signal().await;
    tracing::info!("worker finishing its current sweep (a second signal exits at once)");
    exit_on_second_signal();
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}

/// After the first SIGINT/SIGTERM started a graceful shutdown, a second one ends the process
/// at once (an operator pressing Ctrl-C twice means it).
fn exit_on_second_signal() {
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
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

fn read_pem(path: Option<&str>) -> Result<Option<String>, Problem> {
    path.map(|p| {
        std::fs::read_to_string(p).map_err(|e| Problem::invalid("public-key-file", format!("Cannot read {p}: {e}")))
    })
    .transpose()
}

fn client_id(keys: &paygate_core::NewAppKeys, mode: Mode) -> String {
    keys.hserve_clients.iter().find(|(_, m)| *m == mode).map(|(id, _)| id.clone()).unwrap_or_default()
}

fn credential_json(c: &paygate_store::FaceCredential) -> serde_json::Value {
    json!({
        "face": c.face, "livemode": c.scope.mode.is_live(), "public_id": c.public_id,
        "secret": paygate_store::ExposeSecret::expose_secret(&c.secret),
        "token": c.token,
    })
}

fn app_json(app: &paygate_domain::App) -> serde_json::Value {
    json!({"id": app.id, "name": app.name, "created": app.created, "signed_requests": app.public_key_pem.is_some(),
        "late_payment": app.late_payment.as_str()})
}

async fn app_command(cmd: AppCommand) -> Result<(), Problem> {
    match cmd {
        AppCommand::Create { name, public_key_file, json, db } => {
            let pem = read_pem(public_key_file.as_deref())?;
            let keys = open_default(&db).await?.create_app(&name, pem).await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "id": keys.app.id, "name": keys.app.name, "created": keys.app.created,
                        "test_secret_key": keys.test_secret_key, "live_secret_key": keys.live_secret_key,
                        "hserve_test_client_id": client_id(&keys, Mode::Test),
                        "hserve_live_client_id": client_id(&keys, Mode::Live),
                        "credentials": keys.credentials.iter().map(credential_json).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!("app:             {}", keys.app.id);
                println!("test secret key: {}\nlive secret key: {}", keys.test_secret_key, keys.live_secret_key);
                let (test, live) = (client_id(&keys, Mode::Test), client_id(&keys, Mode::Live));
                println!("知晓云 client id: {test} (test), {live} (live)");
            }
        }
        AppCommand::List { json, db } => {
            let apps = open_default(&db).await?.list_apps().await?;
            if json {
                println!("{}", serde_json::Value::Array(apps.iter().map(app_json).collect()));
            } else {
                for a in apps {
                    println!("{}\t{}\t{}", a.id, a.created, a.name);
                }
            }
        }
        AppCommand::RollKey { app_id, live, grace_hours, json, db } => {
            let grace = i64::from(grace_hours) * 3600;
            let key = open_default(&db).await?.roll_api_key(&app_id, mode(live), grace).await?;
            if json {
                println!(
                    "{}",
                    json!({"app": app_id, "livemode": live, "secret_key": key, "old_key_grace_seconds": grace})
                );
            } else {
                println!("new {} secret key: {key}", mode(live).name());
                println!("(shown only now; the previous key keeps working for {grace_hours} h)");
            }
        }
        AppCommand::SetPublicKey { app_id, public_key_file, none: _, db } => {
            let pem = read_pem(public_key_file.as_deref())?;
            open_default(&db).await?.set_app_public_key(&app_id, pem.as_deref()).await?;
            let now = if pem.is_some() { "now requires signed requests" } else { "no longer requires signed requests" };
            tracing::info!("app {app_id} {now}");
        }
        AppCommand::SetLatePayment { app_id, policy, db } => {
            let policy = paygate_domain::LatePayment::parse(&policy)
                .ok_or_else(|| Problem::invalid("policy", "late payment policy must be 'refund' or 'hold'"))?;
            open_default(&db).await?.set_app_late_payment(&app_id, policy).await?;
            tracing::info!("app {app_id} now handles late payments with '{}'", policy.as_str());
        }
        AppCommand::SetMaxShare { app_id, percent, db } => {
            open_default(&db).await?.set_app_max_share(&app_id, percent).await?;
            tracing::info!("app {app_id} may share at most {percent}% of what was paid");
        }
        AppCommand::HserveClients { app_id, json, db } => {
            let clients = open_default(&db).await?.store.hserve_clients(&app_id).await?;
            if json {
                let list: Vec<_> =
                    clients.iter().map(|(id, m)| json!({"client_id": id, "livemode": m.is_live()})).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for (id, mode) in clients {
                    println!("{id} {}", mode.name());
                }
            }
        }
        AppCommand::Credentials { app_id, db } => {
            for c in open_default(&db).await?.store.face_credentials(&app_id).await? {
                println!("{}", credential_json(&c));
            }
        }
        AppCommand::SetFeeRate { app_id, family, basis_points, live, db } => {
            let app = open_default(&db).await?;
            let caller = app.caller_for(&app_id, mode(live)).await?;
            app.set_fee_rate(&caller, &family, basis_points).await?;
            tracing::info!("app {app_id} pays {basis_points} basis points on {family} ({})", mode(live).name());
        }
    }
    Ok(())
}

async fn set_endpoint_disabled(scope: cli::AppScope, id: &str, db: Database, disabled: bool) -> Result<(), Problem> {
    let app = open_default(&db).await?;
    let caller = app.caller_for(&scope.app_id, mode(scope.live)).await?;
    let endpoint = app.set_endpoint_disabled(&caller, id, disabled).await?;
    tracing::info!("{id} is {}", endpoint.status());
    Ok(())
}

async fn webhook_command(cmd: WebhookCommand) -> Result<(), Problem> {
    match cmd {
        WebhookCommand::Create { scope, url, events, json, policy, db } => {
            let app = open(&db, policy.policy()).await?;
            let caller = app.caller_for(&scope.app_id, mode(scope.live)).await?;
            let types = events.map(|e| e.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect());
            let (endpoint, secret) = app.create_endpoint(&caller, &url, types).await?;
            if json {
                println!(
                    "{}",
                    json!({"id": endpoint.id, "url": endpoint.url, "livemode": endpoint.livemode,
                    "events": endpoint.types, "secret": secret})
                );
            } else {
                println!("endpoint: {}\nurl:      {}\nsecret:   {secret}", endpoint.id, endpoint.url);
                println!("(the secret is shown only now)");
            }
        }
        WebhookCommand::List { scope, json, db } => {
            let app = open_default(&db).await?;
            let caller = app.caller_for(&scope.app_id, mode(scope.live)).await?;
            let endpoints = app.endpoints(&caller).await?;
            if json {
                let list: Vec<_> = endpoints
                    .iter()
                    .map(|e| {
                        json!({"id": e.id, "url": e.url, "livemode": e.livemode, "events": e.types,
                        "status": e.status()})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for e in endpoints {
                    let events = e.types.as_ref().map(|t| t.join(",")).unwrap_or_else(|| "*".into());
                    println!("{}\t{}\t{}\t{}", e.id, e.url, events, e.status());
                }
            }
        }
        WebhookCommand::Disable { scope, endpoint_id, db } => {
            set_endpoint_disabled(scope, &endpoint_id, db, true).await?
        }
        WebhookCommand::Enable { scope, endpoint_id, db } => {
            set_endpoint_disabled(scope, &endpoint_id, db, false).await?
        }
        WebhookCommand::Delete { scope, endpoint_id, db } => {
            let app = open_default(&db).await?;
            let caller = app.caller_for(&scope.app_id, mode(scope.live)).await?;
            app.delete_endpoint(&caller, &endpoint_id).await?;
            tracing::info!("deleted {endpoint_id}");
        }
        WebhookCommand::PublicKey { json, db } => {
            let pem = open_default(&db).await?.platform_public_key_pem().await?;
            if json {
                println!("{}", json!({ "pem": pem }));
            } else {
                print!("{pem}");
            }
        }
    }
    Ok(())
}
