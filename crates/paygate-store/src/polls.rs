//! The channel poller's schedule (`channel_polls`, PostgreSQL 0010 + 0012 / SQLite 0011 + 0013): charges, refunds
//! and shares pending at a real channel, each with when it is next asked about. A round is claimed by a
//! conditional UPDATE on the row as read (`next_at`, `attempts`): of two nodes that read the same due row, exactly
//! one moves it on, and only that one asks the channel. The claim writes the next check time before the channel is
//! asked, so a node that dies mid-round leaves the row due again later, never lost.

use crate::rows::{RowLike, SqlParam};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::{Mode, Scope};

/// What is polled: a charge (its payment) or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollKind {
    Charge,
    Refund,
    /// A profit share whose settlement at the channel was not answered (Alipay's order settle).
    Share,
}

impl PollKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Charge => "charge",
            PollKind::Refund => "refund",
            PollKind::Share => "share",
        }
    }

    fn parse(s: &str) -> Result<PollKind> {
        match s {
            "charge" => Ok(PollKind::Charge),
            "refund" => Ok(PollKind::Refund),
            "share" => Ok(PollKind::Share),
            other => Err(paygate_domain::Problem::internal(format!("channel_polls.kind '{other}'"))),
        }
    }
}

/// One claimed round: the object to ask about, and how many rounds it had before this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePoll {
    pub kind: PollKind,
    pub id: String,
    pub scope: Scope,
    pub attempts: i64,
    /// When this round's claim says to look again (already written).
    pub next_at: i64,
}

#[async_trait]
pub trait PollStore: Send + Sync {
    /// Asks about `id` at `at` (and then on the backoff); an object already scheduled keeps its schedule.
    async fn schedule_poll(&self, kind: PollKind, scope: &Scope, id: &str, now: i64, at: i64) -> Result<()>;
    /// Claims up to `limit` rows due at `now`: each claimed row's `next_at` becomes `now + delay(attempts + 1)`
    /// and its `attempts` one more, in the same conditional UPDATE that decides the claim.
    async fn claim_due_polls(&self, now: i64, limit: i64, delays: &[i64]) -> Result<Vec<DuePoll>>;
    /// The object's answer is final (or it is no longer asked about): its row goes.
    async fn end_poll(&self, kind: PollKind, id: &str) -> Result<()>;
    /// `(next_at, attempts)` of a scheduled object: for tests and operators.
    async fn poll_schedule(&self, kind: PollKind, id: &str) -> Result<Option<(i64, i64)>>;
}

/// The delay after `attempts` rounds: the schedule's step, its last step once past the end.
pub fn poll_delay(delays: &[i64], attempts: i64) -> i64 {
    let at = usize::try_from(attempts).unwrap_or(0);
    delays.get(at).or(delays.last()).copied().unwrap_or(60)
}

const SCHEDULE: &str = "INSERT INTO channel_polls (kind, object_id, app_id, livemode, created, next_at, attempts) \
    VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (kind, object_id) DO NOTHING";
const DUE: &str = "SELECT kind, object_id, app_id, livemode, next_at, attempts FROM channel_polls \
    WHERE next_at <= $1 ORDER BY next_at LIMIT $2";
const CLAIM: &str = "UPDATE channel_polls SET next_at = $5, attempts = attempts + 1 \
    WHERE kind = $1 AND object_id = $2 AND next_at = $3 AND attempts = $4";
const END: &str = "DELETE FROM channel_polls WHERE kind = $1 AND object_id = $2";
const SHOW: &str = "SELECT next_at, attempts FROM channel_polls WHERE kind = $1 AND object_id = $2";

struct Row {
    kind: PollKind,
    id: String,
    scope: Scope,
    next_at: i64,
    attempts: i64,
}

fn due_row(r: &dyn RowLike) -> Result<Row> {
    let mode = if r.boolean(3)? { Mode::Live } else { Mode::Test };
    Ok(Row {
        kind: PollKind::parse(&r.text(0)?)?,
        id: r.text(1)?,
        scope: Scope { app_id: r.text(2)?, mode },
        next_at: r.int(4)?,
        attempts: r.int(5)?,
    })
}

#[async_trait]
impl<B: crate::Backend> PollStore for B {
    async fn schedule_poll(&self, kind: PollKind, scope: &Scope, id: &str, now: i64, at: i64) -> Result<()> {
        let params = vec![
            SqlParam::Text(kind.as_str().into()),
            SqlParam::Text(id.to_string()),
            SqlParam::Text(scope.app_id.clone()),
            SqlParam::Bool(scope.mode.is_live()),
            SqlParam::Int(now),
            SqlParam::Int(at),
        ];
        job!(self, Write, [], |tx| {
            tx.exec(SCHEDULE, &params).await?;
            Ok(())
        })
    }

    async fn claim_due_polls(&self, now: i64, limit: i64, delays: &[i64]) -> Result<Vec<DuePoll>> {
        let delays = delays.to_vec();
        // The read takes no lock: the conditional UPDATE decides, and on PostgreSQL a second node's UPDATE waits
        // for the first one's commit and then finds the row changed (0 rows): it skips that row.
        let due =
            job!(self, Read, [], |tx| { tx.query(DUE, &[SqlParam::Int(now), SqlParam::Int(limit)], due_row).await })?;
        let mut claimed = Vec::new();
        for row in due {
            let next_at = now.saturating_add(poll_delay(&delays, row.attempts.saturating_add(1)));
            let params = vec![
                SqlParam::Text(row.kind.as_str().into()),
                SqlParam::Text(row.id.clone()),
                SqlParam::Int(row.next_at),
                SqlParam::Int(row.attempts),
                SqlParam::Int(next_at),
            ];
            let won = job!(self, Write, [], |tx| { Ok(tx.exec(CLAIM, &params).await? == 1) })?;
            if won {
                claimed.push(DuePoll { kind: row.kind, id: row.id, scope: row.scope, attempts: row.attempts, next_at });
            }
        }
        Ok(claimed)
    }

    async fn end_poll(&self, kind: PollKind, id: &str) -> Result<()> {
        let params = vec![SqlParam::Text(kind.as_str().into()), SqlParam::Text(id.to_string())];
        job!(self, Write, [], |tx| {
            tx.exec(END, &params).await?;
            Ok(())
        })
    }

    async fn poll_schedule(&self, kind: PollKind, id: &str) -> Result<Option<(i64, i64)>> {
        let params = vec![SqlParam::Text(kind.as_str().into()), SqlParam::Text(id.to_string())];
        job!(self, Read, [], |tx| { tx.query_opt(SHOW, &params, |r| Ok((r.int(0)?, r.int(1)?))).await })
    }
}
