//! The worker: claims due deliveries from the outbox with a lease (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED`, so several nodes share the work; SQLite: the single writer), POSTs each event,
//! records the attempt, and schedules the next one; it also closes expired orders and returns
//! late money. Time comes from the application's clock, so tests drive the schedule with
//! [`Worker::tick`].
//!
//! [`Worker::run`] keeps deliveries flowing: up to `max_in_flight` sends at once, claiming more
//! as slots free up and recording attempts as they finish, never more than `per_endpoint` in
//! flight for one endpoint, so a slow or dead endpoint delays only itself. One failing item (an
//! order that cannot be closed, a refund, a delivery) is logged and never stops the others.
//!
//! Housekeeping also keeps the outbox history: every [`UPKEEP_SECONDS`] it has the store create
//! the coming months (PostgreSQL's monthly partitions) and, with a retention set, drop the months
//! past it and delete older events in batches ([`paygate_store::OutboxHistory`]).

use paygate_core::webhooks::webhook_signatures;
use paygate_core::Paygate;
use paygate_domain::events::{next_attempt_delay, MAX_ATTEMPTS};
use paygate_domain::Problem;
use paygate_store::{Attempt, AttemptRecord, AttemptResult, Claim, DueDelivery};
use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tracing::Instrument;

/// At most this much of a receiver's answer is kept in the attempt log.
pub const SNIPPET_BYTES: usize = 512;
/// Sends run on tokio's blocking pool, which the SQLite store's reads share: leave it room.
pub const MAX_IN_FLIGHT_LIMIT: usize = 256;
/// Orders looked at per expiry or late-refund pass.
const HOUSEKEEPING_BATCH: i64 = 100;
/// How often (by the application's clock) the outbox history is looked after: months created
/// ahead, months past retention dropped; after a failure, [`UPKEEP_RETRY_SECONDS`].
pub const UPKEEP_SECONDS: i64 = 3600;
const UPKEEP_RETRY_SECONDS: i64 = 60;
/// Months created ahead of the current one: two upkeeps that fail for a month still leave room.
pub const MONTHS_AHEAD: i64 = 2;
/// Events deleted per retention step (one transaction; SQLite's writer serves others in between).
pub const TRIM_BATCH: i64 = 500;

/// Sends in flight at most, all endpoints together, unless configured.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 128;
/// Sends in flight at most to one endpoint unless configured: enough for one busy merchant
/// server to take deliveries quickly, few enough that a dead endpoint holds an eighth of the
/// slots at most.
pub const DEFAULT_PER_ENDPOINT: i64 = 16;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Pause between claims when there was nothing to do.
    pub poll: Duration,
    /// Deliveries claimed at most by one claim (one sweep of [`Worker::tick`]).
    pub batch: i64,
    /// Sends in flight at most, all endpoints together.
    pub max_in_flight: usize,
    /// Sends in flight at most to one endpoint, counted from the leases (so across nodes too).
    pub per_endpoint: i64,
    /// How long a claim is owned; a crashed worker's claims come free after this. Must outlast
    /// an attempt: see [`Settings::validate`].
    pub lease_seconds: i64,
    /// Per-attempt timeout, DNS lookup included.
    pub timeout: Duration,
    /// Events older than this many days whose deliveries are all finished are removed with their
    /// deliveries and attempts (PostgreSQL: whole months); `None` keeps them forever.
    pub event_retention_days: Option<i64>,
    /// Seconds after Beijing midnight from which yesterday's channel bills are reconciled (WeChat Pay publishes
    /// them from 09:00 and asks for 10:00 or later); `None`: no daily reconciliation.
    pub reconcile_at: Option<i64>,
}

/// Seconds between the daily reconciliation's checks (a day already reconciled costs one small read per
/// account; a run that failed — no answer, a bill not ready — is tried again at the next check).
pub const RECONCILE_CHECK_SECONDS: i64 = 600;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll: Duration::from_millis(200),
            batch: 32,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            per_endpoint: DEFAULT_PER_ENDPOINT,
            lease_seconds: 60,
            timeout: Duration::from_secs(10),
            event_retention_days: None,
            reconcile_at: Some(10 * 3600),
        }
    }
}

impl Settings {
    /// Refuses settings under which a delivery could be sent twice by healthy workers, or not
    /// at all. The lease must outlast the attempt timeout by more than a second: the clock
    /// counts whole seconds, so a lease of N seconds may run out N − 1 seconds after the claim,
    /// and a delivery still on the wire must never be claimed again.
    pub fn validate(&self) -> Result<(), Problem> {
        let lease_left = u64::try_from(self.lease_seconds.saturating_sub(1)).unwrap_or(0);
        if Duration::from_secs(lease_left) <= self.timeout {
            return Err(Problem::invalid(
                "PAYGATE_WORKER_LEASE_SECONDS",
                format!(
                    "The worker's lease ({} s, PAYGATE_WORKER_LEASE_SECONDS) must exceed the attempt timeout \
                     ({} ms, PAYGATE_WORKER_TIMEOUT_MS) by more than a second, or a delivery still being sent \
                     would be claimed and sent again.",
                    self.lease_seconds,
                    self.timeout.as_millis()
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Problem::invalid("PAYGATE_WORKER_TIMEOUT_MS", "The attempt timeout must be at least 1 ms."));
        }
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&self.max_in_flight) {
            return Err(Problem::invalid(
                "PAYGATE_WORKER_MAX_IN_FLIGHT",
                format!("Sends in flight must be between 1 and {MAX_IN_FLIGHT_LIMIT}, got {}.", self.max_in_flight),
            ));
        }
        if self.event_retention_days.is_some_and(|days| !(1..=36_500).contains(&days)) {
            return Err(Problem::invalid(
                "PAYGATE_EVENT_RETENTION_DAYS",
                "Event retention must be between 1 and 36500 days (unset keeps events forever).",
            ));
        }
        if self.per_endpoint < 1 || self.batch < 1 {
            return Err(Problem::invalid(
                "PAYGATE_WORKER_PER_ENDPOINT",
                "The per-endpoint limit and the claim batch must be at least 1.",
            ));
        }
        Ok(())
    }
}

/// Days the console overview rollup takes on in one housekeeping pass.
pub const OVERVIEW_DAYS_PER_PASS: usize = 3;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    pub expired_orders: usize,
    pub late_refunds: usize,
    /// Old events removed by retention (with their deliveries and attempts) this sweep.
    pub trimmed_events: usize,
    /// Console sessions past their idle or absolute expiry deleted this sweep.
    pub expired_sessions: usize,
    /// Payments and refunds pending at a real channel whose final answer the poller recorded this sweep.
    pub polled: usize,
    /// Items that failed and were logged (the next pass tries them again); none stopped the
    /// others.
    pub errors: usize,
}

impl Sweep {
    fn add(&mut self, other: Sweep) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.expired_orders += other.expired_orders;
        self.late_refunds += other.late_refunds;
        self.trimmed_events += other.trimmed_events;
        self.expired_sessions += other.expired_sessions;
        self.polled += other.polled;
        self.errors += other.errors;
    }
}

pub struct Worker {
    app: Arc<Paygate>,
    settings: Settings,
    agent: ureq::Agent,
    upkeep: Mutex<Upkeep>,
}

/// When the outbox history is next looked after, and whether retention has more to delete.
#[derive(Debug, Default)]
struct Upkeep {
    /// `None`: at the first housekeeping pass.
    next_at: Option<i64>,
    trimming: bool,
    /// When the daily reconciliation is next checked (`None`: at the first pass).
    reconcile_next_at: Option<i64>,
}

/// What one send did, timed by the application's clock.
struct Sent {
    started_at: i64,
    finished_at: i64,
    status: Option<u16>,
    retry_after: Option<i64>,
    snippet: Option<String>,
    error: Option<String>,
    latency_ms: i64,
}

type Sending = JoinSet<(DueDelivery, Sent)>;

impl Worker {
    /// A worker with `settings` as they are; [`Worker::try_new`] checks them first.
    pub fn new(app: Arc<Paygate>, settings: Settings) -> Worker {
        let resolver = GuardedResolver { allow_private: app.policy.webhook_allow_private, timeout: settings.timeout };
        // Never follow redirects: a 3xx is a failed attempt, never a request to wherever it points.
        let agent = ureq::AgentBuilder::new().timeout(settings.timeout).redirects(0).resolver(resolver).build();
        Worker { app, settings, agent, upkeep: Mutex::default() }
    }

    /// A worker, once [`Settings::validate`] accepts its settings: what a process starts with.
    pub fn try_new(app: Arc<Paygate>, settings: Settings) -> Result<Worker, Problem> {
        settings.validate()?;
        Ok(Worker::new(app, settings))
    }

    /// Works until `shutdown` becomes true: deliveries flow continuously while expiry and late
    /// refunds run beside them, so neither waits for the other. On shutdown no more is claimed
    /// and the sends in flight finish and are recorded (SIGTERM drains); anything claimed but
    /// unrecorded after a crash is claimed again when its lease runs out.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        tokio::join!(self.keep_house(shutdown.clone()), self.deliver(shutdown));
    }

    /// One sweep: expire orders and return late money, then claim what is due now (within the
    /// limits), send it concurrently, and record each attempt — the same steps `run` takes.
    /// Fails only when nothing could be claimed at all; failing items are counted and logged.
    pub async fn tick(&self) -> Result<Sweep, Problem> {
        let mut sweep = self.housekeeping().await;
        let mut sending = Sending::new();
        let limit = self.settings.batch.min(i64::try_from(self.settings.max_in_flight).unwrap_or(i64::MAX));
        self.claim_and_send(&mut sending, limit).await?;
        let mut finished = Vec::new();
        while let Some(joined) = sending.join_next().await {
            finished.push(joined);
        }
        sweep.add(self.record(finished).await);
        Ok(sweep)
    }

    async fn keep_house(&self, mut shutdown: watch::Receiver<bool>) {
        while !stopping(&shutdown) {
            let sweep = self.housekeeping().await;
            // A full pass means more may be waiting: go again at once. Failures never count,
            // so a broken order cannot make this spin.
            let limit = HOUSEKEEPING_BATCH as usize;
            let trimming = sweep.trimmed_events == TRIM_BATCH as usize;
            if sweep.expired_orders < limit && sweep.late_refunds < limit && !trimming {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Expiry, then late refunds: each order on its own, failures logged and retried next pass.
    async fn housekeeping(&self) -> Sweep {
        let started = Instant::now();
        let sweep = self.housekeeping_pass().instrument(tracing::debug_span!("housekeeping")).await;
        let metrics = &self.app.metrics;
        metrics.sweep_seconds.observe(started.elapsed().as_secs_f64());
        metrics.expired_orders.inc_by(sweep.expired_orders as u64);
        metrics.worker_errors.inc_by(sweep.errors as u64);
        if sweep.expired_orders + sweep.late_refunds + sweep.trimmed_events > 0 {
            let (expired, late_refunds, trimmed_events) =
                (sweep.expired_orders, sweep.late_refunds, sweep.trimmed_events);
            tracing::info!(expired, late_refunds, trimmed_events, "housekeeping");
        }
        sweep
    }

    async fn housekeeping_pass(&self) -> Sweep {
        let mut sweep = Sweep::default();
        match self.app.expire_due_orders(HOUSEKEEPING_BATCH).await {
            Ok(pass) => {
                sweep.expired_orders = pass.done;
                sweep.errors += log_failures("closing expired order", pass.failed);
            }
            Err(problem) => {
                tracing::error!(%problem, "finding expired orders");
                sweep.errors += 1;
            }
        }
        match self.app.refund_unreturned_late_payments(HOUSEKEEPING_BATCH).await {
            Ok(pass) => {
                sweep.late_refunds = pass.done;
                sweep.errors += log_failures("refunding late payment of order", pass.failed);
            }
            Err(problem) => {
                tracing::error!(%problem, "finding late payments to refund");
                sweep.errors += 1;
            }
        }
        // Payments and refunds pending at WeChat or Alipay: asked about again on their backoff (paygate-core
        // channel_poller).
        match self.app.poll_channels(HOUSEKEEPING_BATCH).await {
            Ok(pass) => {
                sweep.polled = pass.done;
                sweep.errors += log_failures("asking the channel about", pass.failed);
            }
            Err(problem) => {
                tracing::error!(%problem, "finding payments and refunds to ask the channel about");
                sweep.errors += 1;
            }
        }
        self.outbox_upkeep(&mut sweep).await;
        self.daily_reconciliation(&mut sweep).await;
        // The console overview's finished days (paygate-core console/overview.rs): one small read when none is
        // due, a few days per pass when some are (a new install catches up on 30 days over several passes).
        match self.app.console_rollup(OVERVIEW_DAYS_PER_PASS).await {
            Ok(0) => {}
            Ok(days) => tracing::info!(days, "console overview rollup"),
            Err(problem) => {
                tracing::error!(%problem, "rolling up the console overview");
                sweep.errors += 1;
            }
        }
        // Console sessions nobody came back to: one bounded batch per pass (a backlog drains over a few passes).
        let (now, limits) = (self.app.now(), paygate_core::console::SESSION_LIMITS);
        match self.app.store.delete_expired_console_sessions(now, limits, HOUSEKEEPING_BATCH).await {
            Ok(0) => {}
            Ok(deleted) => {
                sweep.expired_sessions = usize::try_from(deleted).unwrap_or(usize::MAX);
                tracing::info!(deleted, "expired console sessions deleted");
            }
            Err(problem) => {
                tracing::error!(%problem, "deleting expired console sessions");
                sweep.errors += 1;
            }
        }
        sweep
    }

    /// Yesterday's bills, once the configured time of day has passed (paygate-core `reconcile_due`).
    async fn daily_reconciliation(&self, sweep: &mut Sweep) {
        let Some(at) = self.settings.reconcile_at else { return };
        let now = self.app.now();
        let due = self
            .upkeep
            .lock()
            .map(|mut u| {
                let due = u.reconcile_next_at.is_none_or(|next| now >= next);
                if due {
                    u.reconcile_next_at = Some(now + RECONCILE_CHECK_SECONDS);
                }
                due
            })
            .unwrap_or(false);
        if !due {
            return;
        }
        match self.app.reconcile_due(at).await {
            Ok(pass) => {
                if pass.done > 0 {
                    tracing::info!(runs = pass.done, "daily reconciliation");
                }
                sweep.errors += log_failures("reconciling", pass.failed);
            }
            Err(problem) => {
                tracing::error!(%problem, "finding the channel bills to reconcile");
                sweep.errors += 1;
            }
        }
    }

    /// At each upkeep: the coming months, then (with a retention) the months past it; between
    /// upkeeps, while retention has more to delete, one batch per pass. A failed step is logged
    /// and the upkeep retried a minute later.
    async fn outbox_upkeep(&self, sweep: &mut Sweep) {
        let now = self.app.now();
        let store = &self.app.store;
        let cutoff = self.settings.event_retention_days.map(|days| now.saturating_sub(days.saturating_mul(86_400)));
        let due = self.upkeep.lock().map(|u| u.next_at.is_none_or(|at| now >= at)).unwrap_or(true);
        if due {
            let mut failed = false;
            match store.prepare_outbox_months(now, MONTHS_AHEAD).await {
                Ok(0) => {}
                Ok(months) => tracing::info!(months, "outbox months created ahead"),
                Err(problem) => {
                    tracing::error!(%problem, "creating the coming outbox months");
                    failed = true;
                }
            }
            if let Some(cutoff) = cutoff {
                match store.drop_outbox_months(cutoff).await {
                    Ok(pass) if pass.dropped + pass.kept > 0 => {
                        tracing::info!(
                            dropped = pass.dropped,
                            kept_pending = pass.kept,
                            "outbox months past retention"
                        );
                    }
                    Ok(_) => {}
                    Err(problem) => {
                        tracing::error!(%problem, "dropping outbox months past retention");
                        failed = true;
                    }
                }
            }
            sweep.errors += usize::from(failed);
            if let Ok(mut u) = self.upkeep.lock() {
                u.next_at = Some(now + if failed { UPKEEP_RETRY_SECONDS } else { UPKEEP_SECONDS });
                u.trimming = cutoff.is_some();
            }
        }
        let trimming = self.upkeep.lock().map(|u| u.trimming).unwrap_or(false);
        let (Some(cutoff), true) = (cutoff, trimming) else { return };
        let more = match store.trim_outbox_history(cutoff, TRIM_BATCH).await {
            Ok(deleted) => {
                sweep.trimmed_events = usize::try_from(deleted).unwrap_or(usize::MAX);
                deleted >= TRIM_BATCH as u64
            }
            Err(problem) => {
                tracing::error!(%problem, "deleting events past retention");
                sweep.errors += 1;
                false
            }
        };
        if let Ok(mut u) = self.upkeep.lock() {
            u.trimming = more;
        }
    }

    /// The dispatcher: keeps up to `max_in_flight` sends going, claims more whenever a slot is
    /// free (the claim itself holds back endpoints at their limit), and records whatever has
    /// finished in one transaction. A slow endpoint only ever holds its own slots.
    async fn deliver(&self, mut shutdown: watch::Receiver<bool>) {
        let mut sending = Sending::new();
        let mut draining = false;
        loop {
            draining = draining || stopping(&shutdown);
            let room = self.settings.max_in_flight.saturating_sub(sending.len());
            let mut more_due = false;
            if !draining && room > 0 {
                let asked = self.settings.batch.min(i64::try_from(room).unwrap_or(i64::MAX));
                match self.claim_and_send(&mut sending, asked).await {
                    // A full claim means more may be due: claim again at once if there is room.
                    Ok(claimed) => more_due = claimed as i64 == asked && sending.len() < self.settings.max_in_flight,
                    Err(problem) => tracing::error!(%problem, "claiming deliveries"),
                }
            }
            if more_due {
                continue;
            }
            if sending.is_empty() {
                if draining {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            // Wait for a send to finish; with slots free, also for new work to come due.
            let has_room = sending.len() < self.settings.max_in_flight;
            let first = tokio::select! {
                joined = sending.join_next() => joined,
                _ = tokio::time::sleep(self.settings.poll), if has_room && !draining => None,
                _ = shutdown.changed(), if !draining => None,
            };
            let mut finished: Vec<_> = first.into_iter().collect();
            while let Some(joined) = sending.try_join_next() {
                finished.push(joined);
            }
            if !finished.is_empty() {
                self.record(finished).await;
            }
        }
    }

    /// Claims up to `limit` due deliveries and starts sending each on the blocking pool.
    /// Returns how many were claimed.
    async fn claim_and_send(&self, sending: &mut Sending, limit: i64) -> Result<usize, Problem> {
        // The key first: nothing is claimed that could not be signed.
        let key = self.app.platform_key().await?;
        let now = self.app.now();
        let (lease_until, per_endpoint) = (now + self.settings.lease_seconds, self.settings.per_endpoint);
        let claim = Claim { now, lease_until, limit, per_endpoint };
        let due = self.app.store.claim_deliveries(&claim).await?;
        let claimed = due.len();
        for delivery in due {
            let (agent, key, clock) = (self.agent.clone(), key.clone(), self.app.clock.clone());
            sending.spawn_blocking(move || {
                let started_at = clock.now();
                let body = delivery.event.render().to_string();
                let headers = webhook_signatures(&key, body.as_bytes(), &delivery.secret, started_at);
                let mut sent = send(&agent, &delivery.url, &body, &headers);
                // The next attempt counts from when this one ended, however long it took.
                (sent.started_at, sent.finished_at) = (started_at, clock.now());
                (delivery, sent)
            });
        }
        Ok(claimed)
    }

    /// Judges and records finished sends, all in one transaction; if that fails, one by one, so
    /// a record that cannot be written never loses the others. Unrecorded deliveries keep their
    /// lease and are sent again when it runs out (at-least-once).
    async fn record(&self, finished: Vec<Result<(DueDelivery, Sent), JoinError>>) -> Sweep {
        let mut sweep = Sweep::default();
        let mut records = Vec::with_capacity(finished.len());
        for joined in finished {
            match joined {
                Ok((delivery, sent)) => {
                    let (status, error) = (sent.status, sent.error.clone());
                    let record = judge(&delivery, sent);
                    let result = match record.result {
                        AttemptResult::Delivered => {
                            sweep.delivered += 1;
                            "delivered"
                        }
                        AttemptResult::RetryAt(_) => {
                            sweep.retrying += 1;
                            "retrying"
                        }
                        AttemptResult::GiveUp => {
                            sweep.failed += 1;
                            "failed"
                        }
                    };
                    self.app.metrics.deliveries.get_or_create(&paygate_core::metrics::ResultLabels { result }).inc();
                    let span = tracing::info_span!("delivery", seq = delivery.seq, endpoint = %delivery.endpoint_id,
                        event = %delivery.event.id, attempt = delivery.attempts + 1);
                    span.in_scope(|| match result {
                        "delivered" => tracing::info!(status, latency_ms = record.attempt.latency_ms, result),
                        _ => tracing::warn!(status, error, latency_ms = record.attempt.latency_ms, result),
                    });
                    records.push(record);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a send did not finish; its lease will run out and it is retried");
                    sweep.errors += 1;
                    self.app.metrics.worker_errors.inc();
                }
            }
        }
        if records.is_empty() {
            return sweep;
        }
        if let Err(problem) = self.app.store.record_attempts(&records).await {
            let n = records.len();
            tracing::warn!(%problem, "recording {n} attempt(s) together failed; now one by one");
            for record in &records {
                if let Err(problem) = self.app.store.record_attempts(std::slice::from_ref(record)).await {
                    tracing::error!(delivery = record.seq, %problem, "recording an attempt");
                    sweep.errors += 1;
                }
            }
        }
        sweep
    }
}

/// The attempt as logged, and what happens to the delivery next: retries count from when the
/// attempt finished, so a slow attempt never makes the next one come early.
fn judge(delivery: &DueDelivery, sent: Sent) -> AttemptRecord {
    let made = delivery.attempts + 1;
    let result = if sent.status.is_some_and(|s| (200..300).contains(&s)) {
        AttemptResult::Delivered
    } else {
        // Jitter spreads retries; without randomness the schedule itself still holds.
        let mut jitter = [0u8; 1];
        let _ = getrandom::getrandom(&mut jitter);
        match next_attempt_delay(made, sent.retry_after, jitter[0]) {
            Some(delay) if made < MAX_ATTEMPTS => AttemptResult::RetryAt(sent.finished_at + delay),
            _ => AttemptResult::GiveUp,
        }
    };
    let attempt = Attempt {
        attempted_at: sent.started_at,
        status_code: sent.status.map(i64::from),
        latency_ms: sent.latency_ms,
        error: sent.error,
        response_snippet: sent.snippet,
    };
    let (seq, event_created, lease_until) = (delivery.seq, delivery.event.created, delivery.lease_until);
    AttemptRecord { seq, event_created, lease_until, attempt, result }
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    // A dropped sender also means stop (and would make `changed()` return at once forever).
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

fn log_failures(what: &str, failed: Vec<(String, Problem)>) -> usize {
    for (id, problem) in &failed {
        tracing::warn!(%problem, "{what} {id} failed; tried again next pass");
    }
    failed.len()
}

fn send(agent: &ureq::Agent, url: &str, body: &str, headers: &[(&'static str, String)]) -> Sent {
    let started = Instant::now();
    let mut request = agent.post(url).set("content-type", "application/json; charset=utf-8");
    request = request.set("user-agent", "paygate-webhooks/1");
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = match request.send_string(body) {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(_, r)) => Ok(r),
        Err(e) => Err(e.to_string()),
    };
    let (status, retry_after, snippet, error) = (None, None, None, None);
    let mut sent = Sent { started_at: 0, finished_at: 0, status, retry_after, snippet, error, latency_ms: 0 };
    match response {
        Ok(r) => {
            sent.status = Some(r.status());
            sent.retry_after = r.header("retry-after").and_then(|v| v.trim().parse::<i64>().ok());
            // Only what the log keeps is read (bounded by the attempt's deadline).
            let mut bytes = Vec::new();
            let _ = r.into_reader().take(SNIPPET_BYTES as u64).read_to_end(&mut bytes);
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if text.len() > SNIPPET_BYTES {
                let cut = (0..=SNIPPET_BYTES).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                text.truncate(cut);
            }
            sent.snippet = Some(text);
        }
        Err(error) => sent.error = Some(error),
    }
    sent.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    sent
}

/// Resolves webhook hosts for the agent. Unless the operator allows private addresses, it
/// drops every address paygate may not call on a merchant's behalf — after DNS, so a public
/// name that resolves to 127.0.0.1 or 169.254.169.254 is refused too, at every attempt — and
/// ureq connects only to what is left. The lookup is bounded by the attempt timeout (ureq's own
/// deadline does not cover DNS).
struct GuardedResolver {
    allow_private: bool,
    timeout: Duration,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let found = match netloc.parse::<SocketAddr>() {
            Ok(literal) => vec![literal],
            Err(_) => lookup(netloc, self.timeout)?,
        };
        if self.allow_private {
            return Ok(found);
        }
        let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            found.into_iter().partition(|a| paygate_core::webhooks::is_public_address(a.ip()));
        if public.is_empty() && !refused.is_empty() {
            let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "refused: {netloc} is a non-public address ({}); PAYGATE_WEBHOOK_ALLOW_PRIVATE=1 allows it",
                    list.join(", ")
                ),
            ));
        }
        Ok(public)
    }
}

/// The system resolver on its own thread, given up on after `timeout` (the thread finishes its
/// lookup on its own; nothing waits for it).
fn lookup(netloc: &str, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let name = netloc.to_string();
    std::thread::Builder::new().name("webhook-dns".into()).spawn(move || {
        let _ = tx.send(name.to_socket_addrs().map(|addrs| addrs.collect::<Vec<_>>()));
    })?;
    let slow = || io::Error::new(io::ErrorKind::TimedOut, format!("DNS lookup of {netloc} took over {timeout:?}"));
    rx.recv_timeout(timeout).map_err(|_| slow())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_must_outlast_an_attempt() {
        assert!(Settings::default().validate().is_ok());
        for (lease, timeout_ms) in [(10, 10_000), (5, 10_000), (11, 10_000), (2, 1_000), (0, 1)] {
            let timeout = Duration::from_millis(timeout_ms);
            let s = Settings { lease_seconds: lease, timeout, ..Settings::default() };
            let err = s.validate().expect_err("refused");
            assert!(err.message.contains("PAYGATE_WORKER_LEASE_SECONDS"), "{err}");
        }
        let s = Settings { lease_seconds: 3, timeout: Duration::from_millis(1_900), ..Settings::default() };
        assert!(s.validate().is_ok());
        for bad in [
            Settings { max_in_flight: 0, ..Settings::default() },
            Settings { max_in_flight: MAX_IN_FLIGHT_LIMIT + 1, ..Settings::default() },
            Settings { per_endpoint: 0, ..Settings::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_resolver_drops_private_addresses_unless_allowed() {
        let strict = GuardedResolver { allow_private: false, timeout: Duration::from_secs(5) };
        use ureq::Resolver;
        for refused in ["127.0.0.1:80", "[::1]:80", "169.254.169.254:80", "[::ffff:10.0.0.1]:443", "localhost:80"] {
            let err = strict.resolve(refused).expect_err(refused);
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{refused}: {err}");
        }
        assert_eq!(strict.resolve("93.184.215.14:443").unwrap().len(), 1);
        let open = GuardedResolver { allow_private: true, timeout: Duration::from_secs(5) };
        assert!(!open.resolve("localhost:80").unwrap().is_empty());
    }
}
