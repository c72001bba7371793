//! The worker: claims due deliveries from the outbox with a lease (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED`, so several nodes share the work; SQLite: the single writer), POSTs each event,
//! records the attempt, and schedules the next one; it also closes expired orders. Time comes from
//! the application's clock, so tests drive the schedule with [`Worker::tick`].

use paygate_core::Paygate;
use paygate_domain::events::{next_attempt_delay, MAX_ATTEMPTS};
use paygate_domain::Problem;
use paygate_store::{Attempt, AttemptResult, DueDelivery};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// At most this much of a receiver's answer is kept in the attempt log.
pub const SNIPPET_BYTES: usize = 512;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Pause between sweeps when there was nothing to do.
    pub poll: Duration,
    /// Deliveries claimed (and sent concurrently) per sweep.
    pub batch: i64,
    /// How long a claim is owned; a crashed worker's claims come free after this.
    pub lease_seconds: i64,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { poll: Duration::from_millis(200), batch: 32, lease_seconds: 60, timeout: Duration::from_secs(10) }
    }
}

impl Settings {
    /// Defaults, with `PAYGATE_WORKER_LEASE_SECONDS` and `PAYGATE_WORKER_POLL_MS` overriding.
    pub fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let mut s = Settings::default();
        if let Some(lease) = var("PAYGATE_WORKER_LEASE_SECONDS") {
            s.lease_seconds = lease.max(1) as i64;
        }
        if let Some(poll) = var("PAYGATE_WORKER_POLL_MS") {
            s.poll = Duration::from_millis(poll.max(10));
        }
        s
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    pub expired_orders: usize,
}

pub struct Worker {
    app: Arc<Paygate>,
    settings: Settings,
    agent: ureq::Agent,
}

struct Sent {
    status: Option<u16>,
    retry_after: Option<i64>,
    snippet: Option<String>,
    error: Option<String>,
    latency_ms: i64,
}

impl Worker {
    pub fn new(app: Arc<Paygate>, settings: Settings) -> Worker {
        let agent = ureq::AgentBuilder::new().timeout(settings.timeout).redirects(0).build();
        Worker { app, settings, agent }
    }

    /// Sweeps until `shutdown` becomes true. A sweep in progress finishes first (SIGTERM drains
    /// in-flight deliveries); anything claimed but unsent after a crash is re-claimed when its
    /// lease runs out.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let busy = match self.tick().await {
                Ok(sweep) => sweep.delivered + sweep.retrying + sweep.failed + sweep.expired_orders > 0,
                Err(problem) => {
                    eprintln!("paygate: worker: {problem}");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// One sweep: expire orders, then deliver what is due now.
    pub async fn tick(&self) -> Result<Sweep, Problem> {
        let mut sweep = Sweep { expired_orders: self.app.expire_due_orders(100).await?, ..Sweep::default() };
        self.app.refund_unreturned_late_payments(100).await?;
        let now = self.app.now();
        let due = self.app.store.claim_deliveries(now, now + self.settings.lease_seconds, self.settings.batch).await?;
        if due.is_empty() {
            return Ok(sweep);
        }
        let key = self.app.platform_key().await?;
        let mut sending = tokio::task::JoinSet::new();
        for delivery in due {
            let (agent, key) = (self.agent.clone(), key.clone());
            sending.spawn_blocking(move || {
                let body = delivery.event.render().to_string();
                let headers = paygate_core::webhooks::webhook_signatures(&key, body.as_bytes(), &delivery.secret, now);
                let sent = send(&agent, &delivery.url, &body, &headers);
                (delivery, sent)
            });
        }
        let mut records = Vec::new();
        while let Some(joined) = sending.join_next().await {
            let (delivery, sent) = joined.map_err(Problem::internal)?;
            let (attempt, result) = self.judge(&delivery, sent)?;
            match result {
                AttemptResult::Delivered => sweep.delivered += 1,
                AttemptResult::RetryAt(_) => sweep.retrying += 1,
                AttemptResult::GiveUp => sweep.failed += 1,
            }
            records.push((delivery.seq, attempt, result));
        }
        // One transaction for the whole sweep: one commit instead of one per delivery.
        self.app.store.record_attempts(&records).await?;
        Ok(sweep)
    }

    /// The attempt as logged, and what happens to the delivery next.
    fn judge(&self, delivery: &DueDelivery, sent: Sent) -> Result<(Attempt, AttemptResult), Problem> {
        let now = self.app.now();
        let made = delivery.attempts + 1;
        let result = if sent.status.is_some_and(|s| (200..300).contains(&s)) {
            AttemptResult::Delivered
        } else {
            let mut jitter = [0u8; 1];
            getrandom::getrandom(&mut jitter).map_err(Problem::internal)?;
            match next_attempt_delay(made, sent.retry_after, jitter[0]) {
                Some(delay) if made < MAX_ATTEMPTS => AttemptResult::RetryAt(now + delay),
                _ => AttemptResult::GiveUp,
            }
        };
        let attempt = Attempt { attempted_at: now, status_code: sent.status.map(i64::from), latency_ms: sent.latency_ms, error: sent.error, response_snippet: sent.snippet };
        Ok((attempt, result))
    }
}

fn send(agent: &ureq::Agent, url: &str, body: &str, headers: &[(&'static str, String)]) -> Sent {
    let started = Instant::now();
    let mut request = agent.post(url).set("content-type", "application/json; charset=utf-8").set("user-agent", "paygate-webhooks/1");
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = match request.send_string(body) {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(_, r)) => Ok(r),
        Err(e) => Err(e.to_string()),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    match response {
        Ok(r) => {
            let status = r.status();
            let retry_after = r.header("retry-after").and_then(|v| v.trim().parse::<i64>().ok());
            let mut text = r.into_string().unwrap_or_default();
            if text.len() > SNIPPET_BYTES {
                let cut = (0..=SNIPPET_BYTES).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                text.truncate(cut);
            }
            Sent { status: Some(status), retry_after, snippet: Some(text), error: None, latency_ms }
        }
        Err(error) => Sent { status: None, retry_after: None, snippet: None, error: Some(error), latency_ms },
    }
}
