//! `paygate reconcile run`: one day's reconciliation of a channel's bill (对账), as the daily job and
//! `POST /v1/reconciliations` run it. Prints the statement and what it reported; exits non-zero when the run
//! could not be made (no account, no answer, a bill that does not read), not when it found discrepancies.

use crate::cli::{Database, PolicyArgs};
use crate::cli_accounts::MasterKeyArgs;
use clap::{Args, Subcommand};
use paygate_core::{Paygate, SystemClock};
use paygate_domain::accounts::Provider;
use paygate_domain::reconcile::{BillDate, Discrepancy};
use paygate_domain::{Mode, Problem};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum ReconcileCommand {
    /// Download the channel's bill of a day and reconcile it against paygate's books.
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The app's id (app_…).
    #[arg(long = "app")]
    pub app_id: String,
    #[arg(long, value_parser = ["test", "live"], default_value = "test")]
    pub mode: String,
    #[arg(long, value_parser = ["wechat", "alipay"])]
    pub channel: String,
    /// The Beijing-time day, YYYY-MM-DD (default: yesterday).
    #[arg(long)]
    pub date: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub master: MasterKeyArgs,
    #[command(flatten)]
    pub db: Database,
}

pub async fn run(cmd: ReconcileCommand) -> Result<(), Problem> {
    let ReconcileCommand::Run(args) = cmd;
    let provider = Provider::parse(&args.channel)?;
    let keys = args.master.keys()?;
    let app: Arc<Paygate> = paygate::start_configured(
        &args.db.database,
        usize::from(args.db.pg_pool),
        Arc::new(SystemClock),
        args.policy.policy(),
    )
    .await?;
    app.set_master_keys(keys);
    let date = match &args.date {
        Some(d) => BillDate::parse("date", d)?,
        None => BillDate::of(app.now()).previous(),
    };
    let caller = app.caller_for(&args.app_id, Mode::from_live(args.mode == "live")).await?;
    let outcome = app.reconcile(&caller, provider, date).await?;
    let r = &outcome.reconciliation;
    if args.json {
        let mut object = r.to_json();
        object["reported"] = Value::Array(outcome.reported.iter().map(Discrepancy::to_json).collect());
        println!("{object}");
        return Ok(());
    }
    let s = &r.statement;
    println!("{} {} {} version {}: {}", r.id, provider.as_str(), date, r.version, r.result());
    println!(
        "  payments  paygate {} / {} fen   channel {} / {} fen",
        s.paygate_payments.count, s.paygate_payments.amount, s.channel_payments.count, s.channel_payments.amount
    );
    println!(
        "  refunds   paygate {} / {} fen   channel {} / {} fen",
        s.paygate_refunds.count, s.paygate_refunds.amount, s.channel_refunds.count, s.channel_refunds.amount
    );
    println!("  fees      channel {} fen   paygate {} fen", s.channel_fees, s.paygate_fees);
    println!(
        "  rows {}: consistent {}, carried {}, missing locally {}, missing at channel {}, mismatch {}, recovered {}",
        s.bill_rows, s.consistent, s.carried, s.missing_locally, s.missing_at_channel, s.mismatch, s.recovered
    );
    for d in &outcome.reported {
        println!("  {} {} {} {}", d.id, d.kind.as_str(), d.object_key, d.state.as_str());
    }
    Ok(())
}
